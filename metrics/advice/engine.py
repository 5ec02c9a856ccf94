"""Running the advice: every rule over one Context, each draft checked (a draft that fails is never offered), the
findings given stable ids (rule, route and a digest of the draft and the route it was made against), and, when
the gateway-wide `ai` provider is configured, worded by the LLM (metrics.advice.phrasing), whose own drafts are
checked the same way and refused, with the reason, when they fail."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache

from metrics.advice import balancing, breakers, caching, capacity, limits, phrasing, timeouts
from metrics.advice.context import Context
from metrics.advice.drafts import Draft, DraftRefused, check_draft, digest
from metrics.advice.findings import SEVERITIES, Finding
from metrics.procfiles import Combined
from routes.secrets import redact

Rule = Callable[[Context], list[Finding]]
RULES: dict[str, Rule] = {
    balancing.RULE: balancing.latency_aware,
    timeouts.RULE: timeouts.read_timeout,
    breakers.RULE: breakers.circuit_breaker,
    limits.RULE: limits.rate_limit,
    caching.RULE: caching.cache,
    capacity.RULE: capacity.capacity,
}
GATEWAY = "gateway"  # the route part of the id of advice about the whole gateway
SHOWN_PREFIX = "rusta:advice:shown:"  # the route document each shown id was made against, to say what changed
SHOWN_S = 86400


def advice_id(rule: str, route: str, draft: Draft | None) -> str:
    made_of = {"patch": draft.patch, "before": draft.base} if draft else None
    return f"{rule}:{route or GATEWAY}:{digest(made_of)}"


@dataclass
class Advice:
    """A finding as offered: its id, text (the template's or the LLM's), checked draft and what became of the
    LLM's answer."""

    finding: Finding
    id: str
    text: str
    draft: Draft | None
    draft_error: str | None = None  # the rule's draft, refused by the checks (so not offered)
    text_source: str = "template"
    llm_refusal: str | None = None

    def as_dict(self) -> dict[str, Any]:
        finding = self.finding
        return {
            "id": self.id, "rule": finding.rule, "route": finding.route or None, "severity": finding.severity,
            "text": self.text, "text_source": self.text_source, "template_text": finding.text,
            "evidence": finding.evidence,
            "draft": None if self.draft is None else {"patch": redact(self.draft.patch),
                                                      "fields": list(finding.fields)},
            "changes": None if self.draft is None else self.draft.changes,
            "diff": None if self.draft is None else self.draft.text_diff,
            "draft_error": self.draft_error, "llm_refusal": self.llm_refusal,
        }


@dataclass
class AdviceRun:
    items: list[Advice] = field(default_factory=list)
    llm: str | None = None  # "provider/model" when an LLM was asked

    def find(self, advice_id: str) -> Advice | None:
        return next((item for item in self.items if item.id == advice_id), None)


def findings(ctx: Context) -> list[Finding]:
    """Every rule's findings, most severe first."""
    found = [finding for rule in RULES.values() for finding in rule(ctx)]
    found.sort(key=lambda f: (SEVERITIES.index(f.severity), f.rule, f.route))
    return found


def _offered(ctx: Context, finding: Finding) -> Advice | None:
    """The finding with its draft checked; None when its draft would change nothing (the advice is in place)."""
    if finding.patch is None:
        return Advice(finding, advice_id(finding.rule, finding.route, None), finding.text, None)
    try:
        draft = check_draft(ctx.routes[finding.route], finding.patch, finding.fields)
    except DraftRefused as refused:
        return Advice(finding, advice_id(finding.rule, finding.route, None), finding.text, None,
                      draft_error=refused.reason)
    if not draft.changes:
        return None
    return Advice(finding, advice_id(finding.rule, finding.route, draft), finding.text, draft)


def advise(now: datetime, live: Combined | None = None, *, llm: str = "call") -> AdviceRun:
    """The advice at `now`. `llm`: "call" asks the configured LLM (answers cached per finding), "cached" uses only
    answers already cached (applying what was shown, without asking again), "off" uses the templates."""
    ctx = Context(now, live or Combined())
    run = AdviceRun([item for item in (_offered(ctx, f) for f in findings(ctx)) if item is not None])
    settings = phrasing.provider() if llm != "off" else None
    if settings is not None:
        run.llm = f"{settings.provider}/{settings.model}"
        _phrase(ctx, run, settings, ask=llm == "call")
    return run


def remember_shown(run: AdviceRun) -> None:
    """Keep the route document each offered draft was made against, so a stale apply can say what changed."""
    cache.set_many({f"{SHOWN_PREFIX}{item.id}": redact(item.draft.before) for item in run.items if item.draft},
                   SHOWN_S)


def shown_before(advice_id: str) -> dict[str, Any] | None:
    found = cache.get(f"{SHOWN_PREFIX}{advice_id}")
    return found if isinstance(found, dict) else None


def _question(item: Advice) -> str:
    finding = item.finding
    current = {name: item.draft.before.get(name) for name in finding.fields} if item.draft else {}
    return json.dumps({"rule": finding.rule, "route": finding.route or None, "severity": finding.severity,
                       "finding": finding.text, "evidence": finding.evidence["figures"],
                       "allowed_fields": list(finding.fields), "current": redact(current),
                       "draft": redact(item.draft.patch) if item.draft else None}, default=str)


def _phrase(ctx: Context, run: AdviceRun, llm: phrasing.ProviderSettings, *, ask: bool) -> None:
    """Word every offered finding: cached answers first, then one round of questions for the rest (`ask`)."""
    asked: dict[str, Advice] = {}
    for item in list(run.items):
        known = phrasing.cached(item.id, llm)
        if known is not None:
            _settle(ctx, item, known, count=False, llm=llm)
        elif ask:
            asked[item.id] = item
    if not asked:
        return
    answers = phrasing.ask_all(llm, {key: _question(item) for key, item in asked.items()})
    for key, answer in answers.items():
        if answer is None:
            phrasing.count("timeout")
        elif isinstance(answer, phrasing.ProviderError):
            phrasing.count("timeout" if answer.kind == "timeout" else "error")
        else:
            _settle(ctx, asked[key], phrasing.read_answer(answer, asked[key].finding.route), count=True, llm=llm)


def _settle(ctx: Context, item: Advice, answer: phrasing.Phrasing, *, count: bool,
            llm: phrasing.ProviderSettings) -> None:
    """Apply one answer to its advice: the LLM's text, and its draft when it passes the checks; otherwise the
    template text and the rule's draft, with the refusal recorded. A fresh answer is cached (under the id of the
    rule's own draft, so the same advice finds it again) and counted."""
    key = item.id
    finding = item.finding
    refusal = answer.refusal
    draft = item.draft
    if refusal is None and answer.proposed:
        if not finding.route or finding.route not in ctx.routes:
            refusal = "field not allowed: this advice is about the whole gateway and takes no route draft"
        else:
            try:
                draft = check_draft(ctx.routes[finding.route], answer.draft, finding.fields)
            except DraftRefused as refused:
                refusal = refused.reason
    if count:
        phrasing.remember(key, llm, answer)
        phrasing.count("refused" if refusal else "draft_accepted" if answer.proposed else "phrased")
    if refusal is not None:
        item.llm_refusal = refusal
        return
    if answer.text:
        item.text, item.text_source = answer.text, "llm"
    if draft is not item.draft and draft is not None and draft.changes:
        item.draft = draft
        item.id = advice_id(finding.rule, finding.route, draft)
