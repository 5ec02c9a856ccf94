"""Token counts: OpenAI's own figures for OpenAI's models, an estimate (said so) for the others, offline."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from protocols.llm.formats import openai_wire
from protocols.llm.tokens import TOKENS_PER_IMAGE, counter_for, encoding_for

# The example of OpenAI's cookbook ("How to count tokens with tiktoken"), with the prompt_tokens OpenAI's API
# reported for it: 129 for gpt-4 and gpt-3.5-turbo, 124 for gpt-4o and gpt-4o-mini.
COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate "
                                  "jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch "
                                                          "base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to "
                                                               "do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]


@pytest.mark.parametrize(("model", "reported"), [("gpt-4", 129), ("gpt-3.5-turbo", 129), ("gpt-4o", 124),
                                                 ("gpt-4o-mini", 124)])
def test_a_chat_prompt_counts_what_openai_reported_for_it(model, reported):
    request = openai_wire.parse_request({"model": model, "messages": COOKBOOK_MESSAGES})
    assert counter_for(model).count_request(request) == reported


def test_text_counts_match_openai_encodings():
    assert counter_for("gpt-4").count("tiktoken is great!") == 6
    assert counter_for("gpt-4o").count("hello world") == 2
    assert counter_for("gpt-4o").count("") == 0


@pytest.mark.parametrize(("model", "encoding", "exact"), [
    ("gpt-4o-2024-08-06", "o200k_base", True), ("o3-mini", "o200k_base", True), ("gpt-4.1-nano", "o200k_base", True),
    ("gpt-5", "o200k_base", True), ("gpt-4-turbo", "cl100k_base", True), ("openai/gpt-4o", "o200k_base", True),
    ("claude-sonnet-4-5", "o200k_base", False), ("llama3.2", "o200k_base", False),
])
def test_only_openai_models_are_counted_exactly(model, encoding, exact):
    assert encoding_for(model) == (encoding, exact)
    assert counter_for(model).exact is exact


def test_tools_and_images_add_to_the_prompt():
    plain = openai_wire.parse_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "Weather?"}]})
    with_tool = openai_wire.parse_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "Weather?"}],
                                           "tools": [{"type": "function", "function": {
                                               "name": "get_weather", "parameters": {"type": "object"}}}]})
    with_image = openai_wire.parse_request({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]})
    counter = counter_for("gpt-4o")
    assert counter.count_request(with_tool) > counter.count_request(plain)
    assert counter.count_request(with_image) == counter.count_request(plain) + TOKENS_PER_IMAGE


def test_counting_needs_no_network():
    script = textwrap.dedent("""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("no network in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from protocols.llm.tokens import counter_for
        print(counter_for("gpt-4o").count("hello world"), counter_for("gpt-4").count("tiktoken is great!"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "6"]


def test_a_huge_prompt_is_counted_not_refused():
    assert counter_for("gpt-4o").count("A" * 2_000_000) == 250_000
