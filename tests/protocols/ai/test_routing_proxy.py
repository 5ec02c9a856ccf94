"""AI routing through the proxy listener: real uvicorn, real loopback backends and a stub LLM speaking OpenAI's
format. Each backend's echo names its port, so a test sees where every request went."""
from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from protocols.ai.prompt import body_excerpt
from protocols.http import AccessLog
from protocols.table import BackendSpec, RouteSpec
from tests.support.ai_corpus import RULE, corpus
from tests.support.ai_modules import installed
from tests.support.llm_stubs import LlmStub
from tests.support.proxy import ProxyServer, Reply
from tests.support.sized_backend import SizedBackend
from tests.support.upstream import UpstreamServer

DESCRIPTIONS = ("questions in English, JSON documents", "French speakers", "source code review")
WARM_UP = 1500
HELD_OUT = 600


@pytest.fixture(scope="module")
def backends() -> Iterator[list[UpstreamServer]]:
    servers = [UpstreamServer() for _ in DESCRIPTIONS]
    for server in servers:
        server.__enter__()
    yield servers
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def stub() -> Iterator[LlmStub]:
    with LlmStub() as server:
        yield server


def ai_route(servers: list[UpstreamServer], policy: dict[str, Any] | None, route_id: int = 1,
             name: str = "smart") -> RouteSpec:
    specs = tuple(BackendSpec(id=route_id * 10 + i, scheme="http", host="127.0.0.1", port=server.port,
                              description=DESCRIPTIONS[i % len(DESCRIPTIONS)])
                  for i, server in enumerate(servers))
    return RouteSpec(id=route_id, name=name, external_path="/ask", methods=("POST",), backends=specs,
                     policies={"ai_policy": policy} if policy is not None else {})


def gateway_ai(stub: LlmStub, **extra: Any) -> dict[str, Any]:
    return {"ai": {"provider": "openai_compatible", "base_url": stub.base_url, "model": "router-1",
                   "api_key": stub.api_key, "max_concurrency": 64, **extra}}


def answers_by_body(labels: dict[str, int]) -> Callable[[str], str]:
    """The stub's rule, hidden from the gateway: the label of the body excerpt the prompt shows."""
    def answer(user_text: str) -> str:
        body = user_text.split("Body (first characters):\n", 1)[1].rsplit("\nBackends:", 1)[0]
        return json.dumps({"index": labels[body]})

    return answer


def served_by(reply: Reply, servers: list[UpstreamServer]) -> int:
    assert reply.status == 200, reply.body
    port = reply.json()["port"]
    return [server.port for server in servers].index(port)


def post(proxy: ProxyServer, text: str) -> Reply:
    return proxy.call("POST", "/ask", [("Host", "gw"), ("Content-Type", "text/plain")], text.encode())


def test_after_warm_up_the_route_follows_the_llms_rule_asking_it_for_at_most_5_percent(
        backends: list[UpstreamServer], stub: LlmStub):
    warm_up, held_out = list(corpus(seed=31, count=WARM_UP)), list(corpus(seed=32, count=HELD_OUT))
    stub.answer = answers_by_body({body_excerpt(text.encode()): RULE[kind] for kind, text in warm_up + held_out})
    policy = {"strategy": "content_analysis", "decision_timeout_ms": 2000, "decision_header": True}
    with ProxyServer([ai_route(backends, policy)], settings=gateway_ai(stub)) as proxy:
        for _, text in warm_up:
            post(proxy, text)
        asked_before = len(stub.requests)
        stub.delay = 0.3  # a realistic LLM for the held-out requests
        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda pair: post(proxy, pair[1]), held_out))
        asked = len(stub.requests) - asked_before
        right = sum(served_by(reply, backends) == RULE[kind] for reply, (kind, _) in zip(replies, held_out,
                                                                                           strict=True))
        log = proxy.app.dataplane.ai.log
        recent_model = [record.elapsed_s for record in log.recent if record.source in ("model", "cache")]
    assert right >= 0.95 * HELD_OUT, f"{right} of {HELD_OUT} held-out requests reached the rule's backend"
    assert asked <= 0.05 * HELD_OUT, f"the LLM was asked about {asked} of {HELD_OUT} held-out requests"
    headers = [reply.header("X-Rusta-AI-Decision")[0] for reply in replies]
    assert all(re.fullmatch(r"strategy=content_analysis; source=(model|cache|llm); backend=[012]", h)
               for h in headers), headers[:5]
    # The local answers' own cost, as the operator's log measured it, against the LLM's answer time in this run:
    # a small fraction of it even on a loaded machine (the end-to-end figure, against a route without ai_policy,
    # is `make bench`'s).
    assert recent_model and sorted(recent_model)[int(len(recent_model) * 0.99) - 1] < stub.delay / 10


def test_the_decision_header_is_off_unless_asked_and_the_access_log_names_strategy_and_source(
        backends: list[UpstreamServer], stub: LlmStub):
    stream = io.StringIO()
    access_log = AccessLog(stream)
    stub.answer = lambda text: '{"index": 2}'
    with ProxyServer([ai_route(backends, {"strategy": "content_analysis"})], access_log,
                     settings=gateway_ai(stub)) as proxy:
        reply = post(proxy, "def f(x): return x")
    access_log.flush()
    assert served_by(reply, backends) == 2
    assert reply.header("X-Rusta-AI-Decision") == []
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert (line["ai_strategy"], line["ai_source"]) == ("content_analysis", "llm")


@pytest.mark.parametrize("trouble", ["down", "slow", "rate_limited", "garbage", "server_error"])
def test_provider_trouble_never_fails_a_request_it_goes_by_the_fallback_backend(
        backends: list[UpstreamServer], stub: LlmStub, trouble: str):
    if trouble == "down":
        settings = {"ai": {"provider": "openai_compatible", "base_url": "http://127.0.0.1:9", "model": "m"}}
    else:
        settings = gateway_ai(stub, timeout_ms=5000)
        {"slow": lambda: setattr(stub, "delay", 2.0), "rate_limited": stub.rate_limit, "garbage": stub.garbage,
         "server_error": stub.fail}[trouble]()
    policy = {"strategy": "content_analysis", "fallback_backend_index": 1, "decision_timeout_ms": 200,
              "decision_header": True}
    with ProxyServer([ai_route(backends, policy)], settings=settings) as proxy:
        replies = [post(proxy, f"request number {n}") for n in range(6)]
    assert [served_by(reply, backends) for reply in replies] == [1] * 6
    assert all("source=fallback" in reply.header("X-Rusta-AI-Decision")[0] for reply in replies)


def test_without_a_fallback_index_the_route_balances_when_the_llm_fails(backends: list[UpstreamServer],
                                                                       stub: LlmStub):
    stub.fail(503)
    with ProxyServer([ai_route(backends, {"strategy": "content_analysis"})], settings=gateway_ai(stub)) as proxy:
        served = {served_by(post(proxy, f"text {n}"), backends) for n in range(9)}
    assert served == {0, 1, 2}  # round robin


def test_a_chosen_backend_that_is_down_falls_over_to_the_others(backends: list[UpstreamServer], stub: LlmStub):
    stub.answer = lambda text: '{"index": 0}'
    route = ai_route(backends, {"strategy": "content_analysis"})
    with ProxyServer([route], settings=gateway_ai(stub)) as proxy:
        proxy.state.install_health({route.backends[0].id: False}, 1)
        served = [served_by(post(proxy, f"text {n}"), backends) for n in range(4)]
    assert 0 not in served


def test_a_route_without_ai_policy_asks_no_llm(backends: list[UpstreamServer], stub: LlmStub):
    with ProxyServer([ai_route(backends, None)], settings=gateway_ai(stub)) as proxy:
        served = [served_by(post(proxy, "Bonjour"), backends) for _ in range(3)]
    assert served == [0, 1, 2] and stub.requests == []


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99) - 1]


def timed_mix(proxy: ProxyServer, rounds: int) -> list[tuple[float, int, int]]:
    """Small and large bodies interleaved, 8 at a time: (seconds as the client saw it, size, backend port)."""
    def one(size: int) -> tuple[float, int, int]:
        started = time.perf_counter()
        reply = proxy.call("POST", "/ask", [("Host", "gw")], b"x" * size)
        assert reply.status == 200
        return time.perf_counter() - started, size, reply.json()["port"]

    sizes = [100 if n % 2 else 8000 for n in range(rounds)]
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, sizes))


def test_latency_prediction_learns_which_backend_is_fast_for_which_body_and_halves_p99_of_latency_aware():
    # The slow side is 40 times the fast one, so that a loaded machine's own stalls stay well under it.
    with SizedBackend(small_ms=5, large_ms=200) as first, SizedBackend(small_ms=200, large_ms=5) as second:
        fast_for = {100: first.port, 8000: second.port}
        specs = tuple(BackendSpec(id=50 + i, scheme="http", host="127.0.0.1", port=server.port)
                      for i, server in enumerate((first, second)))
        predicted = RouteSpec(id=5, name="predicted", external_path="/ask", methods=("POST",), backends=specs,
                              policies={"ai_policy": {"strategy": "latency_prediction"}})
        aware = RouteSpec(id=5, name="aware", external_path="/ask", methods=("POST",), backends=specs,
                          load_balancing_strategy="latency_aware")
        runs = {}
        for route in (aware, predicted):
            with ProxyServer([route]) as proxy:
                timed_mix(proxy, 60)  # both learn first
                runs[route.name] = timed_mix(proxy, 300)
    figures = {name: p99([seconds for seconds, _, _ in run]) for name, run in runs.items()}
    right = sum(port == fast_for[size] for _, size, port in runs["predicted"]) / len(runs["predicted"])
    print(f"p99 latency_aware {figures['aware'] * 1000:.1f} ms, latency_prediction {figures['predicted'] * 1000:.1f} "
          f"ms; latency_prediction sent {right:.1%} to the backend fast for their size")
    assert right >= 0.99
    assert figures["predicted"] <= 0.5 * figures["aware"], figures


# --- Decision modules installed as packages -------------------------------------------------------------------

@pytest.fixture
def modules(tmp_path: Any) -> Iterator[None]:
    with installed(tmp_path):
        yield


def test_an_installed_module_named_in_ai_policy_routes_and_is_told_the_outcome(
        backends: list[UpstreamServer], modules: None):
    policy = {"strategy": "header_router", "options": {"header": "X-Tier", "value": "gold", "index": 2}}
    with ProxyServer([ai_route(backends, policy)]) as proxy:
        gold = [served_by(proxy.call("POST", "/ask", [("Host", "gw"), ("X-Tier", "gold")], b"{}"), backends)
                for _ in range(3)]
        other = {served_by(post(proxy, "{}"), backends) for _ in range(6)}
        module = next(iter(proxy.app.dataplane.ai._strategies.values()))[2]
    assert gold == [2, 2, 2] and other == {0, 1, 2}
    assert module.observed[:3] == [(2, 200)] * 3


def test_an_installed_module_that_overruns_its_budget_is_bypassed_and_counted(
        backends: list[UpstreamServer], modules: None):
    policy = {"strategy": "sleepy", "decision_timeout_ms": 50, "fallback_backend_index": 1}
    with ProxyServer([ai_route(backends, policy)]) as proxy:
        started = time.perf_counter()
        served = served_by(post(proxy, "{}"), backends)
        elapsed = time.perf_counter() - started
        log = proxy.app.dataplane.ai.log
    assert served == 1 and elapsed < 1.0
    assert log.fallbacks == {("smart", "sleepy", "budget exceeded"): 1}


def test_an_installed_module_that_cannot_start_leaves_the_route_on_its_fallback(
        backends: list[UpstreamServer], modules: None):
    with ProxyServer([ai_route(backends, {"strategy": "broken", "fallback_backend_index": 0})]) as proxy:
        served = [served_by(post(proxy, "{}"), backends) for _ in range(3)]
    assert served == [0, 0, 0]


def test_a_modules_own_check_refuses_bad_options_by_path_and_an_unknown_module_is_refused(modules: None):
    from protocols.ai.config import ai_policy
    from protocols.block_errors import BlockError

    with pytest.raises(BlockError) as refused:
        ai_policy({"strategy": "header_router", "options": {"index": "x"}}, None, 3)
    assert refused.value.errors == {"options.header": ["Must name the request header to route by."],
                                    "options.index": ["Must be a backend position."]}
    with pytest.raises(BlockError) as unknown:
        ai_policy({"strategy": "header_routr"}, None, 3)
    assert "Unknown strategy 'header_routr'" in unknown.value.errors["strategy"][0]
    assert "header_router" in unknown.value.errors["strategy"][0]


@pytest.mark.parametrize(("provider", "path"), [("openai", "/v1/chat/completions"), ("anthropic", "/v1/messages"),
                                                ("ollama", "/api/chat")])
def test_each_provider_wire_routes_requests_by_its_answer(backends: list[UpstreamServer], stub: LlmStub,
                                                          provider: str, path: str):
    stub.answer = lambda prompt: '{"index": 1}' if "Bonjour" in prompt else "Backend 2 fits best."
    settings = {"ai": {"provider": provider, "model": "router-1", "base_url": stub.base_url,
                       **({"api_key": stub.api_key} if provider != "ollama" else {})}}
    with ProxyServer([ai_route(backends, {"strategy": "content_analysis"})], settings=settings) as proxy:
        served = [served_by(post(proxy, text), backends) for text in ("Bonjour à tous", "def f(): pass")]
    assert served == [1, 2]  # JSON, else the first integer of the answer
    assert {request.path for request in stub.requests} == {path}


def test_fallback_providers_are_asked_in_turn_when_the_one_before_fails(backends: list[UpstreamServer],
                                                                       stub: LlmStub):
    stub.fail(503)
    with LlmStub(api_key="sk-second") as second:
        second.answer = lambda prompt: '{"index": 2}'
        policy = {"strategy": "content_analysis", "provider": "openai_compatible", "base_url": stub.base_url,
                  "model": "primary", "api_key": stub.api_key,
                  "fallback_providers": [{"provider": "ollama", "model": "local", "base_url": second.base_url}]}
        with ProxyServer([ai_route(backends, policy)]) as proxy:
            served = [served_by(post(proxy, f"text {n}"), backends) for n in range(3)]
            calls = proxy.app.dataplane.ai.llm.stats()
    assert served == [2, 2, 2]
    assert len(stub.requests) == 3 and [r.path for r in second.requests] == ["/api/chat"] * 3
    assert calls[("openai_compatible", "server")]["calls"] == 3 and calls[("ollama", "ok")]["calls"] == 3
