"""`ai_policy` and the gateway-wide `ai` block through the API and the import: every key of every strategy is kept
as sent (secrets redacted) and reaches the data plane's compiled plan; a key validation cannot apply is refused by
its path, and nothing is saved."""
from __future__ import annotations

from typing import Any

import pytest

from protocols.ai.routing import AiRouting
from protocols.balancing import Balancing
from protocols.http.access import AccessControl
from protocols.plan import build_plan
from protocols.upstream import UpstreamClient
from routes import import_export
from routes.models import Route
from routes.secrets import REDACTED
from routes.services import gateway_settings
from routes.snapshot import build_table

pytestmark = pytest.mark.django_db

BACKENDS = [{"host": "http://10.0.0.5", "port": 8080, "description": "orders"},
            {"host": "http://10.0.0.6", "port": 8080, "description": "French speakers"},
            {"host": "http://10.0.0.7", "port": 8080}]
FULL = {
    "content_analysis": {
        "enabled": True, "strategy": "content_analysis", "fallback_backend_index": 1, "decision_timeout_ms": 250,
        "decision_header": True, "provider": "anthropic", "model": "claude-haiku", "api_key": "sk-ant-secret",
        "timeout_ms": 3000, "max_concurrency": 4, "fallback_providers": [{"provider": "ollama", "model": "llama3"}],
        "streaming": False, "learn": "async", "confidence": 0.9, "sample_rate": 0.05, "cache_ttl_s": 60,
    },
    "latency_prediction": {"strategy": "latency_prediction", "fallback_backend_index": 0, "min_samples": 5,
                           "horizon_s": 120, "decision_timeout_ms": 20},
    "anomaly_detection": {"strategy": "anomaly_detection", "mode": "enforce", "anomaly_backend_index": 2,
                          "threshold": 8, "window_s": 30},
}


def route_doc(name: str, ai_policy: Any) -> dict[str, Any]:
    return {"name": name, "external_path": f"/{name}", "methods": ["POST"], "backends": BACKENDS,
            "ai_policy": ai_policy}


def compiled(name: str) -> Any:
    table = build_table()
    plan = build_plan(table, AccessControl(), Balancing(), AiRouting(UpstreamClient()))
    route = next(route for route in table.routes if route.name == name)
    assert not plan.routes[route.id].broken
    return plan.routes[route.id].ai


@pytest.mark.parametrize("strategy", sorted(FULL))
def test_every_key_of_a_strategy_round_trips_through_the_api_and_reaches_the_plan(api, strategy):
    sample = FULL[strategy]
    response = api.post("/api/routes/", route_doc("r", sample), format="json")
    assert response.status_code == 201, response.json()
    shown = api.get(f"/api/routes/{response.json()['id']}/").json()
    assert shown["ai_policy"] == {**sample, **({"api_key": REDACTED} if "api_key" in sample else {})}
    assert [backend["description"] for backend in shown["backends"]] == ["orders", "French speakers", ""]
    assert api.put(f"/api/routes/{response.json()['id']}/", shown, format="json").status_code == 200
    assert Route.objects.get(name="r").ai_policy == sample
    step = compiled("r")
    assert step.strategy.name == strategy
    assert step.policy.budget_s == sample.get("decision_timeout_ms", 1000) / 1000
    assert [view.description for view in step.views] == ["orders", "French speakers", ""]


def test_the_earlier_gateways_object_form_round_trips_through_export_and_import(staff_user):
    block = {"enabled": True, "strategy": {"content_analysis": {"model": "gpt-4o-mini", "learn": "async"}},
             "provider": "openai", "fallback_backend_index": 0}
    import_export.import_config({"ai": {"provider": "openai", "model": "gpt-4o", "api_key": "sk-gw"},
                                 "routers": [route_doc("r", block)]}, actor=staff_user, source="import", strict=True)
    exported = import_export.export_config(include_secrets=True)
    assert exported["routers"][0]["ai_policy"] == block
    assert exported["ai"]["api_key"] == "sk-gw"
    step = compiled("r")
    assert step.policy.options["learn"] == "async"
    [provider] = step.policy.providers
    assert (provider.provider, provider.model, provider.api_key) == ("openai", "gpt-4o-mini", "sk-gw")


@pytest.mark.parametrize(("block", "path", "words"), [
    ({"strategy": "content_analysis", "learn": "later"}, "ai_policy.learn", "'sync', 'async'"),
    ({"strategy": "latency_prediction", "learn": "async"}, "ai_policy.learn", "content_analysis, not"),
    ({"strategy": "latency_prediction", "provider": "openai"}, "ai_policy.provider", "ask an LLM"),
    ({"strategy": {"content_analysis": {"modle": "x"}}}, "ai_policy.strategy.content_analysis.modle", "Unknown key"),
    ({"strategy": "content_analysis", "decision_timout_ms": 5}, "ai_policy.decision_timout_ms", "decision_timeout_ms"),
    ({"strategy": "content_anaylsis"}, "ai_policy.strategy", "Unknown strategy"),
    ({"enabled": True}, "ai_policy.strategy", "Must name a strategy"),
    ({"strategy": "content_analysis", "provider": "cohere"}, "ai_policy.provider", "openai_compatible"),
    ({"strategy": "content_analysis", "provider": "openai", "base_url": "https://x.example/v1"},
     "ai_policy.base_url", "without"),
    ({"strategy": "content_analysis", "fallback_backend_index": 3}, "ai_policy.fallback_backend_index", "0 to 2"),
    ({"strategy": "anomaly_detection", "fallback_backend_index": 0}, "ai_policy.fallback_backend_index",
     "anomaly_backend_index"),
    ({"strategy": "anomaly_detection", "mode": "enforce", "anomaly_backend_index": 5},
     "ai_policy.anomaly_backend_index", "0 to 2"),
    ({"strategy": "content_analysis", "streaming": True}, "ai_policy.streaming", "never streamed"),
    ({"strategy": "content_analysis", "fallback_providers": [{"provider": "openai", "api_key": "k"}]},
     "ai_policy.fallback_providers[0].api_key", "Unknown key"),
    ({"strategy": "content_analysis", "learn": "async", "strategy_": 1}, "ai_policy.strategy_", "Unknown key"),
])
def test_a_key_that_cannot_be_applied_is_refused_by_its_path_and_nothing_is_saved(api, block, path, words):
    response = api.post("/api/routes/", route_doc("r", block), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert path in errors, errors
    assert any(words in message for message in errors[path]), errors[path]
    assert not Route.objects.exists()


def test_a_backend_description_longer_than_500_characters_is_refused(api):
    doc = route_doc("r", None)
    doc["backends"] = [{**BACKENDS[0], "description": "x" * 501}]
    response = api.post("/api/routes/", doc, format="json")
    assert response.status_code == 400
    assert "backends[0].description" in response.json()["errors"]


def test_the_gateway_ai_block_takes_its_keys_and_refuses_others_by_path(api):
    good = {"provider": "openai_compatible", "base_url": "http://127.0.0.1:8000", "model": "m", "timeout_ms": 800,
            "max_concurrency": 2}
    assert api.patch("/api/config/settings/", {"ai": good}, format="json").status_code == 200
    assert gateway_settings().ai == good
    response = api.patch("/api/config/settings/", {"ai": {"provider": "openai", "temperature": 0.2, "timeout_ms": -1}},
                         format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"ai.temperature", "ai.timeout_ms"}, errors
    assert gateway_settings().ai == good
