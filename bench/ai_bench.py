"""AI routing's `content_analysis` under a realistic LLM: what it adds to a request, and how often it asks the LLM.

A ProxyApp in a process of its own serves two routes over the same three loopback backends: `/ask` with
`ai_policy: content_analysis` (the LLM: a stub speaking OpenAI's format that labels each body by a rule hidden
from the gateway, French to backend 1, source code to 2, the rest to 0, answering in 300 ms), and `/plain`, the
same route without `ai_policy` (round robin). After a warm-up on `/ask` (the local model learns the LLM's
answers), a held-out set of bodies goes to both routes, interleaved, from the same client threads; once with
`learn: "async"` (an unconfident request goes by the fallback while the LLM labels it) and once with "sync" (it
waits for the LLM, which then shows in the p99). Printed: the
share of held-out requests that reached the rule's backend (round robin scores about a third), the share for
which the LLM was asked, and each route's p50 and p99 as the client saw them, with the difference. Bounded: a
fixed number of requests, and every server stops on exit.

    .venv/bin/python -m bench.ai_bench [--warm-up 1500] [--held-out 600] [--threads 4]
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.ai.prompt import body_excerpt  # noqa: E402
from protocols.table import BackendSpec, RouteSpec  # noqa: E402
from tests.support.ai_corpus import RULE, corpus  # noqa: E402
from tests.support.llm_stubs import LlmStub  # noqa: E402
from tests.support.proxy import ProxyProcess  # noqa: E402
from tests.support.upstream import UpstreamServer  # noqa: E402

LLM_DELAY_S = 0.3
DESCRIPTIONS = ("questions in English, JSON documents", "French speakers", "source code review")


def routes(ports: list[int], stub: LlmStub, learn: str) -> list[RouteSpec]:
    def backends(route_id: int) -> tuple[BackendSpec, ...]:
        return tuple(BackendSpec(id=route_id * 10 + i, scheme="http", host="127.0.0.1", port=port,
                                 description=DESCRIPTIONS[i]) for i, port in enumerate(ports))

    policy = {"strategy": "content_analysis", "provider": "openai_compatible", "base_url": stub.base_url,
              "model": "router-1", "api_key": stub.api_key, "max_concurrency": 64, "decision_timeout_ms": 2000,
              "learn": learn}
    return [RouteSpec(id=1, name="ask", external_path="/ask", methods=("POST",), backends=backends(1),
                      policies={"ai_policy": policy}),
            RouteSpec(id=2, name="plain", external_path="/plain", methods=("POST",), backends=backends(2))]


class Client:
    """One keep-alive connection per thread; `post` returns (seconds, the answering backend's port)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, path: str, text: str) -> tuple[float, int]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.perf_counter()
        conn.request("POST", path, text.encode(), {"Content-Type": "text/plain"})
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}: {body[:200]!r}")
        return elapsed, json.loads(body)["port"]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm-up", type=int, default=1500)
    parser.add_argument("--held-out", type=int, default=600)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--learn", choices=("sync", "async", "both"), default="both",
                        help="content_analysis's learn mode (both: one run each)")
    args = parser.parse_args(argv)
    for learn in ("async", "sync") if args.learn == "both" else (args.learn,):
        run(args, learn)
    return 0


def run(args: argparse.Namespace, learn: str) -> None:
    warm_up = list(corpus(seed=41, count=args.warm_up))
    held_out = list(corpus(seed=42, count=args.held_out))
    labels = {body_excerpt(text.encode()): RULE[kind] for kind, text in warm_up + held_out}

    def answer(prompt: str) -> str:
        body = prompt.split("Body (first characters):\n", 1)[1].rsplit("\nBackends:", 1)[0]
        return json.dumps({"index": labels[body]})

    servers = [UpstreamServer() for _ in DESCRIPTIONS]
    for server in servers:
        server.__enter__()
    try:
        with LlmStub() as stub:
            stub.answer = answer
            ports = [server.port for server in servers]
            with ProxyProcess(routes(ports, stub, learn)) as proxy:
                client = Client(proxy.port)
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(lambda pair: client.post("/ask", pair[1]), warm_up))
                    asked_before = len(stub.requests)
                    stub.delay = LLM_DELAY_S
                    jobs = [(path, kind, text) for kind, text in held_out for path in ("/ask", "/plain")]
                    results = list(pool.map(lambda job: (job, client.post(job[0], job[2])), jobs))
                asked = len(stub.requests) - asked_before
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    ai = [(seconds, port, kind) for (path, kind, _), (seconds, port) in results if path == "/ask"]
    plain = [seconds for (path, _, _), (seconds, _) in results if path == "/plain"]
    right = sum(ports.index(port) == RULE[kind] for _, port, kind in ai)
    ai_times = [seconds for seconds, _, _ in ai]
    print(f"AI routing (content_analysis, learn {learn}), {args.held_out} held-out requests after "
          f"{args.warm_up} warm-up, {args.threads} client threads, LLM answering in {LLM_DELAY_S * 1000:.0f} ms:")
    print(f"  reached the rule's backend: {right / len(ai):.1%} (round robin: about 33%)")
    print(f"  LLM asked for: {asked / len(ai):.1%} of requests ({asked})")
    for name, values in (("ai_policy", ai_times), ("same route without", plain)):
        print(f"  {name:>18}: p50 {quantile(values, 0.5) * 1000:7.2f} ms   p99 {quantile(values, 0.99) * 1000:7.2f} ms")
    print(f"  added by AI routing: p50 {(quantile(ai_times, 0.5) - quantile(plain, 0.5)) * 1000:+.2f} ms, "
          f"p99 {(quantile(ai_times, 0.99) - quantile(plain, 0.99)) * 1000:+.2f} ms (target: at most 5 ms at p99)")


if __name__ == "__main__":
    sys.exit(main())
