"""The earlier gateway's AI configuration (`../shared/compat/kairos_config_ai_test.json`, else Rusta's fixture of the
same shape) imported with `importconfig` and served by a real `runproxy`: its route asks a stub provider (the
OpenAI wire, key from OPENAI_API_KEY as the earlier gateway read it) which of two loopback backends takes each
request, and /metrics and the access log say so."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.support.compat import fixture, shared_compat_dir
from tests.support.gateway import Gateway, http, start_gateway
from tests.support.llm_stubs import LlmStub
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)


def pointed_at_loopback(stub: LlmStub, servers: list[UpstreamServer], folder: Path) -> tuple[Path, str, str]:
    """The compat file with its backends on loopback and the gateway-wide `ai` block's base URL on the stub;
    the file, the route's path and its strategy's model."""
    real = shared_compat_dir() / "kairos_config_ai_test.json"
    config = json.loads((real if real.is_file() else fixture("ai_routing.json")).read_text())
    config["ai"]["base_url"] = stub.base_url
    [router] = config["routers"]
    for backend, server in zip(router["backends"], servers, strict=True):
        backend["host"], backend["port"] = "http://127.0.0.1", server.port
    path = folder / "kairos_ai.json"
    path.write_text(json.dumps(config))
    return path, router["external_path"], router["ai_policy"]["strategy"]["content_analysis"]["model"]


def post(gateway: Gateway, path: str, text: str) -> int:
    status, _, body = http("POST", gateway.url + path, text.encode(),
                           {"Content-Type": "text/plain", "Connection": "close"})
    assert status == 200, body
    return json.loads(body)["port"]


def llm_decisions(metrics: bytes) -> list[tuple[str, int]]:
    return [(route, int(count)) for route, count in re.findall(
        r'^rusta_ai_decisions_total\{route="([^"]+)",strategy="content_analysis",source="llm"\} (\d+)$',
        metrics.decode(), re.M)]


def scraped_once_counted(gateway: Gateway, decisions: int, timeout: float = 15.0) -> bytes:
    """/metrics once the worker's flusher (once a second) has written `decisions` LLM decisions."""
    deadline = time.monotonic() + timeout
    while True:
        _, _, metrics = http("GET", gateway.admin_url + "/metrics", headers={"Connection": "close"})
        if sum(count for _, count in llm_decisions(metrics)) >= decisions or time.monotonic() > deadline:
            return metrics
        time.sleep(0.2)


def test_the_earlier_gateways_ai_config_routes_by_the_providers_answers_end_to_end(tmp_path: Path):
    with UpstreamServer() as fast, UpstreamServer() as complex_, LlmStub() as stub:
        stub.answer = lambda prompt: '{"index": 1}' if "complex" in prompt.split("Body", 1)[1] else '{"index": 0}'
        config, path, model = pointed_at_loopback(stub, [fast, complex_], tmp_path)
        call_command("importconfig", str(config))
        gateway = start_gateway(tmp_path, extra_env={"OPENAI_API_KEY": stub.api_key})
        try:
            gateway.wait_version(1)
            ports = [post(gateway, path, text) for text in ("a quick one", "a complex analysis", "quick again",
                                                      "another complex job")]
            metrics = scraped_once_counted(gateway, 4)
        finally:
            assert gateway.stop() == 0
    assert ports == [fast.port, complex_.port, fast.port, complex_.port]
    asked = [request for request in stub.requests if request.path == "/v1/chat/completions"]
    assert len(asked) == 4
    assert {request.body["model"] for request in asked} == {model}  # the route's strategy's, not the gateway's
    assert all(request.headers["authorization"] == f"Bearer {stub.api_key}" for request in asked)
    decisions = llm_decisions(metrics)
    assert [count for _, count in decisions] == [4]
    lines = [line for line in gateway.access_lines() if line.get("route") == decisions[0][0]]
    assert [(line["ai_strategy"], line["ai_source"]) for line in lines] == [("content_analysis", "llm")] * 4
