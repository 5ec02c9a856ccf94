"""The LLM route's prompt guard: allow and deny patterns, detectors of card numbers, IBANs, e-mail addresses and
phone numbers (refused or masked), and a cap on prompt tokens, all in linear time (google-re2)."""
from __future__ import annotations

from protocols.llm.guard.check import ALLOWED, Guard, Message, Verdict
from protocols.llm.guard.config import compile_guard

__all__ = ["ALLOWED", "Guard", "Message", "Verdict", "compile_guard"]
