"""routes.block_keys: every block refuses a misspelt key at its path, in one wording, through the API, the admin
and the import; and the defaults it declares are the ones the data plane applies."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from protocols import guards
from protocols.auth.config import KNOWN_KEYS as JWT_KEYS
from protocols.auth.config import compile_block as compile_jwt
from protocols.block_errors import Issues
from protocols.cache.config import KEYS as CACHE_KEYS
from protocols.cache.config import CachePolicy
from protocols.compression.config import KEYS as COMPRESSION_KEYS
from protocols.compression.config import compile_policy as compile_compression
from protocols.ftp.config import ftp_settings
from protocols.guards import CorsPolicy, IpRules, RequestLimits, SecurityHeaders
from protocols.limits import RateLimitPolicy
from protocols.limits.config import KNOWN_KEYS as RATE_LIMIT_KEYS
from protocols.plugins import config as plugin_config
from protocols.plugins import plugin_entries
from protocols.resilience import breaker_policy, retry_policy
from protocols.transform import REQUEST_KEYS, RESPONSE_KEYS
from protocols.websocket.config import websocket_policy
from routes import import_export, services
from routes.block_keys import BLOCKS, defaults, unknown_key_message
from routes.forms import RouteAdminForm
from routes.models import Route
from routes.resilience_blocks import health_check_settings
from routes.schema import BLOCK_NAMES
from tests.routes.conftest import PASSWORD
from tests.routes.test_admin import ADD_URL, TWO_BACKENDS, route_form
from tests.support.block_samples import JWT_SECRET, PROTOCOL, VALID


def typo(key: str) -> str:
    """`allow` -> `alow`: the second letter dropped, as fingers do."""
    return key[0] + key[2:]


def block_doc(route_doc, block: str, value: Any) -> dict:
    protocol, host = PROTOCOL.get(block, ("http", "http://10.0.0.5"))
    backends = [{"host": host, "port": 2100}] if host is not None else []  # an llm route's models are its targets
    return route_doc(protocol=protocol, backends=backends, **{block: value})


@pytest.mark.django_db
@pytest.mark.parametrize("block", BLOCK_NAMES)
def test_the_api_refuses_a_misspelt_key_of_every_block_at_its_path(api, route_doc, block):
    key = sorted(BLOCKS[block].known)[0]
    assert typo(key) not in BLOCKS[block].known
    value: Any = {**VALID.get(block, {}), typo(key): 1}
    where = block
    if BLOCKS[block].listed:  # a list of entries (`plugins`): the key is misspelt in its first entry
        value, where = [value], f"{block}[0]"
    response = api.post("/api/routes/", block_doc(route_doc, block, value), format="json")
    assert response.status_code == 400
    message = unknown_key_message(block, typo(key), BLOCKS[block].known)
    assert response.json()["errors"] == {f"{where}.{typo(key)}": [message]}
    assert f"Did you mean '{key}'" in message
    assert not Route.objects.exists()


@pytest.mark.django_db
def test_the_api_refuses_a_misspelt_key_inside_a_nested_object_at_its_path(api, route_doc):
    jwt = {"algorithms": ["RS256"], "public_keys": [{"pem": "x", "algorithm": "RS256", "kdi": "one"}]}
    response = api.post("/api/routes/", route_doc(jwt=jwt), format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["jwt.public_keys[0].kdi"][0].startswith("Unknown key; ")


@pytest.mark.django_db
def test_the_api_refuses_a_misspelt_key_on_update_and_keeps_the_route(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(cache={"ttl_s": 5}), format="json").json()["id"]
    response = api.patch(f"/api/routes/{route_id}/", {"cache": {"tll_s": 5}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["cache.tll_s"]
    assert Route.objects.get().cache == {"ttl_s": 5}


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


@pytest.mark.django_db
def test_the_admin_refuses_a_misspelt_guard_key_on_its_field(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, cors='{"origins": ["*"], "max_ag": 5}',
                                                     compression='{"min_byte": 5}'))
    errors = response.context["adminform"].form.errors
    assert errors["cors"] == [f"max_ag: {unknown_key_message('cors', 'max_ag', BLOCKS['cors'].known)}"]
    assert errors["compression"][0].startswith("min_byte: Unknown key; compression knows ")
    assert not Route.objects.exists()


@pytest.mark.django_db
def test_an_import_lists_a_misspelt_key_and_leaves_it_out(route_doc):
    report = import_export.import_config({"routers": [route_doc(cache={"ttl_s": 5, "tll_s": 9})]}, actor=None,
                                    source="import")
    assert report.unknown_keys == ["routers[0].cache.tll_s"]
    assert Route.objects.get().cache == {"ttl_s": 5}


@pytest.mark.django_db
def test_a_strict_import_refuses_a_misspelt_key_at_its_path(route_doc):
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config({"routers": [route_doc(compression={"min_byte": 5})]}, actor=None, source="import",
                               strict=True)
    assert list(caught.value.errors) == ["routers[0].compression.min_byte"]
    assert not Route.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("gateway_wide", [False, True])
def test_an_import_refuses_a_misspelt_access_key_even_without_strict(route_doc, gateway_wide):
    rules = {"alow": ["10.0.0.0/8"]}
    data = {"ip_rules": rules, "routers": []} if gateway_wide else {"routers": [route_doc(ip_rules=rules)]}
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config(data, actor=None, source="import")
    path = "ip_rules.alow" if gateway_wide else "routers[0].ip_rules.alow"
    assert caught.value.errors == {path: [unknown_key_message("ip_rules", "alow", BLOCKS["ip_rules"].known)]}


@pytest.mark.django_db
@pytest.mark.parametrize(("block", "window"), [({"limit": 10}, "window_s"),
                                               ({"requests_per_window": 10}, "window_duration")])
def test_a_rate_limit_without_its_window_is_refused(api, route_doc, block, window):
    response = api.post("/api/routes/", route_doc(rate_limit=block), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [f"rate_limit.{window}"]


def test_the_admin_help_quotes_the_declared_defaults():
    fields = RouteAdminForm().fields
    assert "budget_min_per_s (3)" in fields["retry"].help_text
    assert "max_age (600)" in fields["cors"].help_text


@pytest.mark.parametrize(("block", "read"), [
    ("jwt", JWT_KEYS), ("rate_limit", RATE_LIMIT_KEYS), ("cache", CACHE_KEYS), ("compression", COMPRESSION_KEYS),
    ("request_transformation", REQUEST_KEYS), ("response_transformation", RESPONSE_KEYS),
    ("cors", guards.cors.KEYS), ("limits", guards.limits.KEYS), ("ip_rules", guards.ip_rules.KEYS),
    ("security_headers", guards.security.KEYS), ("plugins", frozenset(plugin_config.ENTRY_KEYS)),
])
def test_every_block_accepts_exactly_the_keys_its_data_plane_reads(block, read):
    assert BLOCKS[block].known == read


def _state(compiled):
    """A compiled block as comparable values (dataclasses compare; the guards' classes are slotted)."""
    if compiled is None or isinstance(compiled, dict) or dataclasses.is_dataclass(compiled):
        return compiled
    return {name: getattr(compiled, name) for name in type(compiled).__slots__ if not name.startswith("_")}


def _compilers():
    return {
        "retry": lambda block: retry_policy("r", {"retry": block}),
        "circuit_breaker": lambda block: breaker_policy("r", {"circuit_breaker": block}),
        "health_check": health_check_settings,
        "cache": CachePolicy.from_config,
        "compression": lambda block: compile_compression(block, Issues()),
        "rate_limit": lambda block: RateLimitPolicy.from_config({"limit": 5, "window_s": 60, **block}),
        "cors": lambda block: CorsPolicy.from_config({"origins": ["https://a.example"], **block}),
        "limits": RequestLimits.from_config,
        "ip_rules": IpRules.from_config,
        "security_headers": SecurityHeaders.from_config,
        "jwt": lambda block: compile_jwt({"secret": JWT_SECRET, **block}),
        "ftp": lambda block: ftp_settings("r", {"ftp": block}),
        "websocket": lambda block: websocket_policy("r", {"websocket": block}),
        "plugins": lambda block: plugin_entries([{"name": "example", **block}])[0],
    }


@pytest.mark.parametrize("block", sorted(_compilers()))
def test_spelling_out_the_declared_defaults_changes_nothing_the_proxy_does(block):
    compile_block = _compilers()[block]
    # `{}` would compile to "no policy" for the blocks an empty object switches on; `enabled` keeps them on.
    empty = {"enabled": True} if "enabled" in BLOCKS[block].keys and block != "health_check" else {}
    assert _state(compile_block({**empty, **defaults(block)})) == _state(compile_block(empty))


@pytest.mark.django_db
def test_an_llm_targets_misspelt_key_and_a_misspelt_cache_key_are_refused_at_their_paths(api, route_doc):
    llm = {"targets": [{"provider": "openai", "modle": "gpt-4o-mini"}], "cache": {"tll_s": 60}}
    response = api.post("/api/routes/", route_doc(protocol="llm", backends=[], llm=llm), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "Did you mean 'model'?" in errors["llm.targets[0].modle"][0]
    assert "Did you mean 'ttl_s'?" in errors["llm.cache.tll_s"][0]
    assert not Route.objects.exists()


@pytest.mark.django_db
def test_an_llm_route_refuses_the_blocks_its_front_doors_would_not_apply(api, route_doc):
    llm = {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}
    response = api.post("/api/routes/", route_doc(protocol="llm", backends=[], llm=llm, cache={"ttl_s": 5},
                                                  health_check={"interval_s": 5},
                                                  retry={"max_retries": 2, "budget_ratio": 0.1}), format="json")
    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == ["cache", "health_check", "retry.max_retries"]
    fine = api.post("/api/routes/", route_doc(protocol="llm", backends=[], llm=llm, retry={"budget_ratio": 0.1},
                                              circuit_breaker={"failure_threshold": 2}), format="json")
    assert fine.status_code == 201, fine.json()
