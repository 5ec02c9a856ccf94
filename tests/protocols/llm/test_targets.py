"""An llm route's targets: providers and aliases resolved, keys from the block or an injected environment, every
key's range refused at its path, header bytes and backends as the gateway uses them, secrets never shown."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from protocols.block_errors import BlockError, Issues, unknown_key_message
from protocols.llm.budgets import Prices
from protocols.llm.targets import TARGET_KEYS, Target, compile_target
from tests.support.llm_providers import ProviderStub

SECRET = "sk-very-secret-0123456789"


def target(entry: dict[str, Any], environ: dict[str, str] | None = None) -> Target:
    issues = Issues()
    compiled = compile_target(entry, "targets[0]", environ or {}, issues)
    issues.raise_if_any()
    assert compiled is not None
    return compiled


def errors_of(entry: Any, environ: dict[str, str] | None = None) -> dict[str, list[str]]:
    issues = Issues()
    assert compile_target(entry, "targets[0]", environ or {}, issues) is None
    return issues.errors


def test_a_target_takes_its_defaults():
    compiled = target({"provider": "openai", "model": "gpt-4o-mini"}, {"OPENAI_API_KEY": "sk-env"})
    assert (compiled.name, compiled.provider, compiled.model, compiled.base_url) == (
        "openai/gpt-4o-mini", "openai", "gpt-4o-mini", "https://api.openai.com")
    assert (compiled.weight, compiled.priority, compiled.prices, compiled.context_window, compiled.timeout_s) == (
        1, 0, None, None, 60.0)
    assert compiled.missing_key == ""


@pytest.mark.parametrize(("provider", "base_url"), [
    ("openai", "https://api.openai.com"),
    ("anthropic", "https://api.anthropic.com"),
    ("ollama", "http://127.0.0.1:11434"),
])
def test_each_provider_has_its_default_base_url(provider, base_url):
    compiled = target({"provider": provider, "model": "m", "api_key": "k"})
    assert (compiled.provider, compiled.base_url, compiled.path_prefix) == (provider, base_url, b"")


@pytest.mark.parametrize(("alias", "base_url", "variable"), [
    ("groq", "https://api.groq.com/openai", "GROQ_API_KEY"),
    ("mistral", "https://api.mistral.ai", "MISTRAL_API_KEY"),
    ("xai", "https://api.x.ai", "XAI_API_KEY"),
])
def test_an_alias_is_openai_compatible_at_its_documented_url_with_its_own_variable(alias, base_url, variable):
    compiled = target({"provider": alias, "model": "m"}, {variable: "sk-alias"})
    assert (compiled.provider, compiled.configured_provider, compiled.base_url) == (
        "openai_compatible", alias, base_url)
    assert (compiled.name, compiled.api_key, compiled.api_key_env) == (f"{alias}/m", "sk-alias", variable)


def test_groq_requests_go_under_its_path_prefix():
    compiled = target({"provider": "groq", "model": "m"}, {"GROQ_API_KEY": "k"})
    assert compiled.path_prefix == b"/openai"
    assert compiled.url("/v1/chat/completions") == "https://api.groq.com/openai/v1/chat/completions"


def test_openai_compatible_needs_a_base_url_and_loses_its_trailing_slash():
    assert errors_of({"provider": "openai_compatible", "model": "m"}) == {
        "targets[0].base_url": ["Provider 'openai_compatible' needs a base_url (such as http://127.0.0.1:8000)."]}
    compiled = target({"provider": "openai_compatible", "model": "m", "base_url": "http://10.0.0.5:8000/vllm/"})
    assert compiled.base_url == "http://10.0.0.5:8000/vllm"
    assert compiled.url("/v1/chat/completions") == "http://10.0.0.5:8000/vllm/v1/chat/completions"


def test_a_base_url_ending_in_v1_is_refused_at_base_url():
    (message,) = errors_of({"provider": "openai", "model": "m", "base_url": "https://proxy.example/v1"})[
        "targets[0].base_url"]
    assert "ends with /v1" in message


@pytest.mark.parametrize("url", ["ftp://x.example", "https://user:pw@x.example", "https://x.example/?a=1",
                                 "not a url"])
def test_a_base_url_that_is_not_a_plain_http_url_is_refused(url):
    assert list(errors_of({"provider": "openai", "model": "m", "base_url": url})) == ["targets[0].base_url"]


@pytest.mark.parametrize("provider", ["cohere", "perplexity"])
def test_refused_providers_say_what_to_use_instead(provider):
    (message,) = errors_of({"provider": provider, "model": "m"})["targets[0].provider"]
    assert "openai_compatible" in message


def test_an_unknown_provider_is_refused_with_the_closest_name():
    (message,) = errors_of({"provider": "antropic", "model": "m"})["targets[0].provider"]
    assert message.startswith("Unknown provider 'antropic'; known providers: anthropic, groq, mistral,")
    assert message.endswith("Did you mean 'anthropic'?")


def test_provider_and_model_are_required():
    assert errors_of({}) == {
        "targets[0].provider": ['Required: "openai", "anthropic", "ollama" or "openai_compatible" (with base_url).'],
        "targets[0].model": ["Required: the provider's model name, e.g. gpt-4o-mini."],
    }
    assert list(errors_of({"provider": "openai", "model": "  "})) == ["targets[0].model"]


def test_an_entry_that_is_not_an_object_is_refused_at_its_position():
    assert list(errors_of("openai/gpt-4o")) == ["targets[0]"]


def test_an_unknown_key_is_refused_with_the_shared_wording_and_a_guess():
    errors = errors_of({"provider": "openai", "modle": "gpt-4o"})
    assert errors["targets[0].modle"] == [unknown_key_message("llm.targets[]", "modle", TARGET_KEYS)]
    assert errors["targets[0].modle"][0].endswith("Did you mean 'model'?")


def test_the_blocks_key_wins_over_the_environment():
    compiled = target({"provider": "openai", "model": "m", "api_key": "sk-block"}, {"OPENAI_API_KEY": "sk-env"})
    assert (compiled.api_key, compiled.api_key_env) == ("sk-block", "")


def test_api_key_env_reads_the_named_variable_from_the_given_environment(monkeypatch):
    monkeypatch.setenv("TEAM_OPENAI_KEY", "sk-from-process")  # not the environment the caller passed
    compiled = target({"provider": "openai", "model": "m", "api_key_env": "TEAM_OPENAI_KEY"},
                      {"TEAM_OPENAI_KEY": " sk-team \n", "OPENAI_API_KEY": "sk-default"})
    assert (compiled.api_key, compiled.api_key_env, compiled.missing_key) == ("sk-team", "TEAM_OPENAI_KEY", "")


def test_a_provider_without_a_key_anywhere_compiles_and_says_which_variable_is_missing():
    compiled = target({"provider": "anthropic", "model": "claude"})
    assert (compiled.api_key, compiled.api_key_env) == ("", "ANTHROPIC_API_KEY")
    assert compiled.missing_key == ("no API key: ANTHROPIC_API_KEY is not set where the gateway runs "
                                    "(or give api_key)")
    assert compiled.auth_headers() == ((b"anthropic-version", b"2023-06-01"),)


def test_ollama_and_openai_compatible_need_no_key():
    for entry in ({"provider": "ollama", "model": "llama3"},
                  {"provider": "openai_compatible", "model": "m", "base_url": "http://127.0.0.1:8000"}):
        compiled = target(entry)
        assert (compiled.api_key, compiled.api_key_env, compiled.missing_key) == ("", "", "")
        assert compiled.auth_headers() == ()


def test_a_named_variable_that_is_unset_is_missing_even_for_a_provider_that_needs_no_key():
    compiled = target({"provider": "ollama", "model": "llama3", "api_key_env": "OLLAMA_PROXY_KEY"})
    assert "OLLAMA_PROXY_KEY is not set" in compiled.missing_key


def test_an_environment_key_a_header_cannot_carry_leaves_the_target_without_it():
    compiled = target({"provider": "openai", "model": "m"}, {"OPENAI_API_KEY": "sk-a\r\nX-Evil: 1"})
    assert compiled.api_key == "" and compiled.auth_headers() == ()
    assert compiled.missing_key == "OPENAI_API_KEY holds characters an HTTP header cannot carry"


def test_api_key_and_api_key_env_are_not_both_given():
    assert errors_of({"provider": "openai", "model": "m", "api_key": "sk", "api_key_env": "OPENAI_API_KEY"}) == {
        "targets[0].api_key_env": ["Give api_key or api_key_env, not both."]}


def test_api_key_env_must_be_a_variable_name():
    assert errors_of({"provider": "openai", "model": "m", "api_key_env": "sk-oops-a-key"}) == {
        "targets[0].api_key_env": ["Must be an environment variable's name, like OPENAI_API_KEY."]}


@pytest.mark.parametrize("key", [f"{SECRET}\r\nX-Evil: 1", f" {SECRET}", "sk ab", "clé"])
def test_a_key_a_header_cannot_carry_is_refused_without_repeating_it(key):
    errors = errors_of({"provider": "openai", "model": "m", "api_key": key})
    assert errors == {"targets[0].api_key": ["Must be printable ASCII without spaces (it is sent in a header)."]}


@pytest.mark.parametrize(("provider", "headers"), [
    ("openai", ((b"authorization", b"Bearer " + SECRET.encode()),)),
    ("anthropic", ((b"x-api-key", SECRET.encode()), (b"anthropic-version", b"2023-06-01"))),
    ("ollama", ((b"authorization", b"Bearer " + SECRET.encode()),)),
])
def test_auth_headers_follow_the_provider(provider, headers):
    assert target({"provider": provider, "model": "m", "api_key": SECRET}).auth_headers() == headers


def test_the_key_is_never_in_repr_or_in_an_error():
    compiled = target({"provider": "openai", "model": "m", "api_key": SECRET})
    assert SECRET not in repr(compiled) and SECRET not in str(compiled)
    from_env = target({"provider": "openai", "model": "m"}, {"OPENAI_API_KEY": SECRET})
    assert SECRET not in repr(from_env) and "OPENAI_API_KEY" in repr(from_env)
    issues = Issues()
    compile_target({"provider": "openai", "model": "m", "api_key": SECRET + "\n", "weight": 0}, "t", {}, issues)
    with pytest.raises(BlockError) as caught:
        issues.raise_if_any()
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("weight", 0, "Must be a whole number from 1 to 1000."),
    ("weight", 1001, "Must be a whole number from 1 to 1000."),
    ("weight", 2.5, "Must be a whole number from 1 to 1000."),
    ("weight", True, "Must be a whole number from 1 to 1000."),
    ("priority", -1, "Must be a whole number from 0 to 100."),
    ("priority", 101, "Must be a whole number from 0 to 100."),
    ("context_window", 0, "Must be a whole number from 1 to 100000000."),
    ("context_window", "128k", "Must be a whole number from 1 to 100000000."),
    ("timeout_ms", 0, "Must be a number of milliseconds from 1 to 600000."),
    ("timeout_ms", 600_001, "Must be a number of milliseconds from 1 to 600000."),
    ("timeout_ms", "60s", "Must be a number of milliseconds from 1 to 600000."),
    ("timeout_ms", float("nan"), "Must be a number of milliseconds from 1 to 600000."),
    ("name", "", "Must not be empty; leave it out for <provider>/<model>."),
    ("name", "x" * 129, "Must be printable text of at most 128 characters."),
    ("name", "bad\nname", "Must be printable text of at most 128 characters."),
    ("model", 4, "Must be a string."),
    ("base_url", ["http://x"], "Must be a string."),
])
def test_each_key_out_of_range_is_refused_at_its_path(key, value, message):
    assert errors_of({"provider": "ollama", "model": "m", key: value}) == {f"targets[0].{key}": [message]}


def test_given_values_are_kept():
    compiled = target({"provider": "ollama", "model": "llama3", "name": "local", "weight": 3, "priority": 2,
                       "context_window": 8192, "timeout_ms": 1500})
    assert (compiled.name, compiled.weight, compiled.priority, compiled.context_window, compiled.timeout_s) == (
        "local", 3, 2, 8192, 1.5)


def test_prices_are_kept_in_micro_units_with_cached_input_defaulting_to_input():
    compiled = target({"provider": "ollama", "model": "m", "price_per_million": {"input": 0.15, "output": 0.6}})
    assert compiled.prices == Prices(input=150_000, output=600_000, cached_input=150_000)
    # 1000 prompt and 500 answer tokens: 0.00015 + 0.0003 = 0.00045 currency units, exactly.
    assert compiled.prices.cost(1000, 500) == 450
    cached = target({"provider": "ollama", "model": "m",
                     "price_per_million": {"input": 2.5, "output": 10, "cached_input": 1.25}})
    assert cached.prices == Prices(input=2_500_000, output=10_000_000, cached_input=1_250_000)


def test_free_prices_are_prices_not_unpriced():
    assert target({"provider": "ollama", "model": "m", "price_per_million": {"input": 0, "output": 0}}).prices == \
        Prices(0, 0, 0)


def test_price_mistakes_are_refused_at_their_path():
    errors = errors_of({"provider": "ollama", "model": "m",
                        "price_per_million": {"input": -1, "output": "10", "cache": 1}})
    assert errors == {
        "targets[0].price_per_million.cache": ["Unknown key; known: input, output, cached_input."],
        "targets[0].price_per_million.input": ["Must be from 0 to 1000000000."],
        "targets[0].price_per_million.output": ["Must be a number."],
    }
    assert list(errors_of({"provider": "ollama", "model": "m", "price_per_million": 2.5})) == [
        "targets[0].price_per_million"]


@pytest.mark.parametrize(("url", "scheme", "host", "port"), [
    ("https://api.example.com", "https", "api.example.com", 443),
    ("http://models.internal", "http", "models.internal", 80),
    ("http://10.0.0.5:8000/vllm", "http", "10.0.0.5", 8000),
    ("https://[::1]:8443", "https", "::1", 8443),
])
def test_backend_spec_takes_scheme_host_and_port_from_the_base_url(url, scheme, host, port):
    spec = target({"provider": "openai_compatible", "model": "m", "base_url": url, "weight": 4}).backend_spec(7, 2)
    assert (spec.scheme, spec.host, spec.port, spec.weight, spec.description) == (
        scheme, host, port, 4, "openai_compatible/m")


def test_backend_ids_are_unique_per_route_and_position_and_never_a_stored_backends():
    compiled = target({"provider": "ollama", "model": "m"})
    ids = {compiled.backend_spec(route, index).id for route in range(0, 50) for index in range(32)}
    assert len(ids) == 50 * 32 and max(ids) < 0
    assert compiled.backend_spec(3, 1) is compiled.backend_spec(3, 1)  # built once, asked per call


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
def test_a_compiled_target_is_answered_by_a_provider_that_checks_its_key(provider):
    with ProviderStub(api_key=SECRET) as stub:
        environ = {"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET}
        compiled = target({"provider": provider, "model": "stub-model", "base_url": stub.base_url}, environ)
        path = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "ollama": "/api/chat"}[provider]
        body = {"model": "stub-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20,
                "stream": False}
        headers = {name.decode(): value.decode() for name, value in compiled.auth_headers()}
        answer = httpx.post(compiled.url(path), json=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        wrong = target({"provider": provider, "model": "stub-model", "base_url": stub.base_url,
                        "api_key": "sk-wrong"})
        headers = {name.decode(): value.decode() for name, value in wrong.auth_headers()}
        refused = httpx.post(wrong.url(path), json=body, headers=headers, timeout=10)
        # Ollama takes no key; the others check it.
        assert refused.status_code == (200 if provider == "ollama" else 401)
