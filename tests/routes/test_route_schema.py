"""routes.schema is the one declaration of a route: walking it, every field and block round-trips through the API,
the admin, export and import, and reaches the data plane's RouteSpec.

A block declared without a sample here fails `test_every_declared_block_has_a_sample`, so a new block cannot skip
these checks.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from protocols.ai.routing import AiRouting
from protocols.balancing import Balancing
from protocols.http.access import AccessControl
from protocols.plan import RoutePlan, build_plan
from protocols.upstream import UpstreamClient
from routes import import_export, schema, services
from routes.block_keys import BLOCKS
from routes.models import Backend, Route
from routes.resilience_blocks import health_check_settings
from routes.secrets import REDACTED, redact
from routes.snapshot import build_table
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BACKENDS = {"http": "http://10.0.0.5", "ftp": "ftp://10.0.0.5", "websocket": "ws://10.0.0.5"}
# A valid value of each block that differs from its defaults, and the protocol of a route that reads it.
BLOCK_SAMPLES: dict[str, tuple[str, Any]] = {
    "retry": ("http", {"max_retries": 3, "retry_on_status_codes": [502, 503]}),
    "health_check": ("http", {"interval_s": 10, "healthy_statuses": [200]}),
    "circuit_breaker": ("http", {"failure_threshold": 3, "failure_ratio": 0.5}),
    "request_transformation": ("http", {"headers": [{"action": "set", "name": "X-Env", "value": "prod"}]}),
    "response_transformation": ("http", {"headers": {"remove": ["X-Powered-By"]}}),
    "rate_limit": ("http", {"limit": 100, "window_s": 60, "scope": ["ip"]}),
    "ai_policy": ("http", {"enabled": True, "strategy": "content_analysis", "provider": "openai"}),
    "cache": ("http", {"ttl_s": 30, "vary_headers": ["Accept-Language"]}),
    "compression": ("http", {"min_bytes": 256, "algorithms": ["gzip"]}),
    "cors": ("http", {"origins": ["https://app.example.com"], "credentials": True}),
    "limits": ("http", {"max_body_bytes": 1048576}),
    "ip_rules": ("http", {"deny": ["10.0.0.13"]}),
    "security_headers": ("http", {"frame_options": "SAMEORIGIN"}),
    "jwt": ("http", {"secret": "a-shared-secret-of-at-least-32-bytes!", "issuer": "https://idp.example.com"}),
    "ftp": ("ftp", {"username": "reports", "password": "a-password", "root": "/srv/reports"}),
    "websocket": ("websocket", {"max_message_bytes": 4096, "idle_timeout_s": 60}),
    "tls": ("http", {"redirect_http": True, "redirect_status": 301, "subject_header": "X-Client-Subject"}),
    # The example plugin package (examples/rusta-example-plugin) is installed with the test requirements.
    "plugins": ("http", [{"name": "example", "config": {"header_value": "sampled"}, "timeout_ms": 20}]),
    # The key is nested in a target: redacted at any depth, restored by position when sent back.
    "llm": ("llm", {"targets": [{"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-sampled-key-1234"}],
                    "max_body_bytes": 65536}),
    "abuse": ("http", {"mode": "enforce", "action": "block", "duration_s": 300}),
    "api_docs": ("http", {"sample_rate": 0.05, "max_body_bytes": 4096}),
}
# A value of each top-level field the data plane reads that differs from its default.
FIELD_SAMPLES: dict[str, Any] = {
    "name": "sampled", "priority": 5, "protocol": "http", "external_path": "/users/{id}",
    "internal_path": "/v2/users/{id}", "match_host": "api.example.com", "methods": ["GET", "POST"],
    "load_balancing_strategy": "least_connections", "auth_required": True, "auth": "jwt", "connect_timeout_ms": 1234,
    "read_timeout_ms": 4321, "total_timeout_ms": 9999, "preserve_host": True,
}


def document(name: str, protocol: str, **fields: Any) -> dict[str, Any]:
    backends = [] if protocol == "llm" else [{"host": BACKENDS[protocol], "port": 2121 if protocol == "ftp" else 8080}]
    return {"name": name, "protocol": protocol, "external_path": f"/{name}", "methods": ["GET"], "backends": backends,
            **fields}


# What the data plane's compiled plan of a route shows of each block (protocols.plan.RoutePlan). `health_check` is
# read by the control plane's probes: it has no entry.
PLANNED: dict[str, Callable[[RoutePlan], Any]] = {
    "retry": lambda plan: plan.runtime.retry.max_retries == 3,
    "circuit_breaker": lambda plan: plan.runtime.breaker.failure_threshold == 3,
    "request_transformation": lambda plan: plan.shaping.request is not None,
    "response_transformation": lambda plan: plan.shaping.response is not None,
    "rate_limit": lambda plan: plan.access.limiter is not None,
    "cache": lambda plan: plan.shaping.cache.ttl_s == 30,
    "compression": lambda plan: plan.shaping.compression.min_bytes == 256,
    "cors": lambda plan: plan.guards.cors is not None,
    "limits": lambda plan: plan.guards.limits.max_body_bytes == 1048576,
    "ip_rules": lambda plan: plan.guards.ip_rules is not None,
    "security_headers": lambda plan: (b"x-frame-options", b"SAMEORIGIN") in plan.guards.security.plain,
    "jwt": lambda plan: plan.access.jwt is not None,
    "ftp": lambda plan: plan.ftp.username == "reports",
    "websocket": lambda plan: plan.websocket.max_message_bytes == 4096,
    "plugins": lambda plan: [(p.name, p.budget_s) for p in plan.plugins.plugins] == [("example", 0.02)],
    "llm": lambda plan: [(t.model, t.api_key) for t in plan.llm.targets] == [("gpt-4o-mini", "sk-sampled-key-1234")]
    and plan.llm.max_body_bytes == 65536,
    "tls": lambda plan: plan.tls.redirect_http and plan.tls.redirect_status == 301,
    "abuse": lambda plan: plan.abuse.enforcing and plan.abuse.duration_s == 300,
    "api_docs": lambda plan: plan.api_docs.sample_rate == 0.05 and plan.api_docs.max_body_bytes == 4096,
    "ai_policy": lambda plan: plan.ai.strategy.name == "content_analysis" and plan.ai.policy.providers[0].provider
    == "openai",
}


def planned(name: str) -> RoutePlan:
    """The data plane's compiled plan of the route named `name`, from the table the gateways would load."""
    table = build_table()
    plan = build_plan(table, AccessControl(), Balancing(), AiRouting(UpstreamClient()))
    route = next(route for route in table.routes if route.name == name)
    assert not plan.routes[route.id].broken
    return plan.routes[route.id]


def spec_of(name: str) -> Any:
    table = build_table()
    found = [route for route in table.routes if route.name == name]
    assert found, f"route {name} is not in the data plane's table"
    return found[0].spec


def test_every_declared_block_has_a_sample():
    assert set(BLOCK_SAMPLES) == set(schema.BLOCK_NAMES)
    assert {f.name for f in schema.FIELDS if f.spec is not None} == set(FIELD_SAMPLES)


def test_every_declared_secret_is_redacted_and_every_block_that_has_one_is_sampled_with_it():
    for block in schema.BLOCKS_BY_NAME.values():
        for key in block.secrets:
            assert key in BLOCKS[block.name].keys, (block.name, key)
            assert redact({key: "value"}) == {key: REDACTED}, (block.name, key)
    sampled = {name for name, (_, sample) in BLOCK_SAMPLES.items()
               if any(key in sample for key in schema.BLOCKS_BY_NAME[name].secrets)}
    assert sampled == {"jwt", "ftp"}


def test_the_model_has_every_stored_field_with_its_declared_default():
    for declared in schema.FIELDS:
        if not declared.stored:
            continue
        model_field = Route._meta.get_field(declared.name)
        if declared.default is not schema.REQUIRED:
            assert model_field.get_default() == declared.default, declared.name
        if declared.is_block:
            assert model_field.null, declared.name


def test_left_out_fields_take_their_declared_defaults_in_the_api_and_the_data_plane(api):
    response = api.post("/api/routes/", document("plain", "http"), format="json")
    assert response.status_code == 201, response.json()
    shown = api.get(f"/api/routes/{response.json()['id']}/").json()
    spec = spec_of("plain")
    for name, default in schema.defaults().items():
        assert shown[name] == default, name
        declared = schema.BY_NAME[name]
        if declared.is_block:
            assert spec.policies[name] is None, name
        elif declared.spec is not None:
            assert getattr(spec, declared.spec) == declared.to_spec(default), name


def test_every_field_reaches_the_data_plane_as_sent(api):
    response = api.post("/api/routes/", {**document("x", "http"), **FIELD_SAMPLES,
                                         "backends": [{"host": "http://10.0.0.5", "port": 8080}]}, format="json")
    assert response.status_code == 201, response.json()
    shown = api.get(f"/api/routes/{response.json()['id']}/").json()
    spec = spec_of("sampled")
    for name, value in FIELD_SAMPLES.items():
        assert shown[name] == value, name
        declared = schema.BY_NAME[name]
        assert getattr(spec, declared.spec) == declared.to_spec(value), name
    assert spec.connect_timeout == pytest.approx(1.234)


@pytest.mark.parametrize("block", sorted(BLOCK_SAMPLES))
def test_a_block_round_trips_through_the_api_and_reaches_the_data_plane(api, block):
    protocol, sample = BLOCK_SAMPLES[block]
    response = api.post("/api/routes/", document("r", protocol, **{block: sample}), format="json")
    assert response.status_code == 201, response.json()
    url = f"/api/routes/{response.json()['id']}/"
    shown = api.get(url).json()
    assert shown[block] == redact(sample)
    assert all(shown[block][key] == REDACTED for key in schema.BLOCKS_BY_NAME[block].secrets if key in sample)
    # The document read back, secrets redacted, saves back unchanged.
    assert api.put(url, shown, format="json").status_code == 200
    assert getattr(Route.objects.get(name="r"), block) == sample
    spec = spec_of("r")
    assert spec.policies[block] == sample
    if block in PLANNED:
        assert PLANNED[block](planned("r")), f"the data plane's plan does not apply {block}"
    if block == "health_check":  # the control plane's probes read it
        assert health_check_settings(Route.objects.get(name="r").health_check)["interval_s"] == 10


def test_every_block_the_data_plane_compiles_is_checked_in_its_plan():
    assert set(PLANNED) == set(schema.BLOCK_NAMES) - {"health_check"}


@pytest.mark.parametrize("block", sorted(BLOCK_SAMPLES))
def test_a_block_round_trips_through_export_and_import(staff_user, block):
    protocol, sample = BLOCK_SAMPLES[block]
    services.save_route(document("r", protocol, **{block: sample}), actor=staff_user, source="api")
    redacted = import_export.export_config()
    # An export read back onto the same installation (secrets redacted) changes nothing.
    report = import_export.import_config(redacted, actor=staff_user, source="import", strict=True)
    assert report.unchanged == ["r"] and not report.changed
    # With its secrets, it rebuilds the route on an empty installation.
    full = import_export.export_config(include_secrets=True)
    Route.objects.all().delete()
    report = import_export.import_config(full, actor=staff_user, source="import", strict=True)
    assert report.created == ["r"]
    assert getattr(Route.objects.get(name="r"), block) == sample
    assert spec_of("r").policies[block] == sample


def _admin_post(protocol: str, blocks: dict[str, Any]) -> dict[str, Any]:
    """The admin add form's POST body of a route whose blocks are `blocks` (JSON text, empty for null)."""
    data: dict[str, Any] = {
        "name": "r", "enabled": "on", "protocol": protocol, "external_path": "/r", "methods": ["GET"],
        "match_host": "", "internal_path": "", "priority": "0", "load_balancing_strategy": "round_robin",
        "connect_timeout_ms": "5000", "read_timeout_ms": "30000", "total_timeout_ms": "0",
        "backends-TOTAL_FORMS": "1", "backends-INITIAL_FORMS": "0", "backends-MIN_NUM_FORMS": "0",
        "backends-MAX_NUM_FORMS": "1000", "backends-0-host": BACKENDS.get(protocol, ""),
        "backends-0-port": "2121" if protocol == "ftp" else "8080", "backends-0-weight": "1",
        "backends-0-enabled": "on",
    }
    if protocol == "llm":  # its models are its llm block's targets: no backend rows
        data = {key: value for key, value in data.items() if not key.startswith("backends-0-")}
        data["backends-TOTAL_FORMS"] = "0"
    data.update({name: "" for name in schema.BLOCK_NAMES})
    data.update(blocks)
    return data


@pytest.mark.parametrize("block", sorted(BLOCK_SAMPLES))
def test_a_block_round_trips_through_the_admin(client, staff_user, block):
    assert client.login(username="alice", password=PASSWORD)
    protocol, sample = BLOCK_SAMPLES[block]
    response = client.post(reverse("admin:routes_route_add"), _admin_post(protocol, {block: json.dumps(sample)}))
    assert response.status_code == 302, response.context["errors"] if response.context else response
    route = Route.objects.get(name="r")
    assert getattr(route, block) == sample
    # The change page shows the block (secrets redacted); saving the page as shown keeps it.
    change = reverse("admin:routes_route_change", args=[route.pk])
    form = client.get(change).context["adminform"].form
    shown = json.loads(form[block].value())
    assert shown == redact(sample)
    data = _admin_post(protocol, {block: json.dumps(shown)})
    if protocol != "llm":
        backend = Backend.objects.get(route=route)
        data.update({"backends-INITIAL_FORMS": "1", "backends-0-id": str(backend.pk),
                     "backends-0-route": str(route.pk)})
    response = client.post(change, data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert getattr(Route.objects.get(name="r"), block) == sample
    assert spec_of("r").policies[block] == sample
