"""LLM provider clients against a fake provider on loopback: wire formats, answers, every error kind, pooling."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any, TypeVar

import pytest

from protocols.ai.providers import (
    ChatResult,
    LlmClient,
    ProviderError,
    ProviderSettings,
    api_key_from_env,
    resolve_provider,
    retry_after_seconds,
)
from tests.support.llm_stubs import LlmStub
from tests.support.upstream import refused_port

T = TypeVar("T")
SYSTEM = "You route requests."
USER = "POST /orders"


def settings_for(stub: LlmStub, provider: str = "openai", **overrides: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "model": "test-model", "api_key": "" if provider == "ollama" else stub.api_key,
        "base_url": stub.base_url, "timeout_s": 5.0,
    }
    values.update(overrides)
    return ProviderSettings(provider, **values)


def with_stub(scenario: Callable[[LlmStub, LlmClient], Awaitable[T]]) -> T:
    """Run `scenario` on a fresh loop with a stub serving on it and a client of its own."""
    async def main() -> T:
        async with LlmStub() as stub:
            client = LlmClient()
            try:
                return await scenario(stub, client)
            finally:
                await client.aclose()

    return asyncio.run(main())


def chat_error(stub_setup: Callable[[LlmStub], None], provider: str = "openai", **overrides: Any) -> ProviderError:
    async def scenario(stub: LlmStub, client: LlmClient) -> ProviderError:
        stub_setup(stub)
        with pytest.raises(ProviderError) as caught:
            await client.chat(settings_for(stub, provider, **overrides), SYSTEM, USER)
        return caught.value

    return with_stub(scenario)


def one_call(provider: str, **overrides: Any) -> tuple[ChatResult, LlmStub]:
    async def scenario(stub: LlmStub, client: LlmClient) -> tuple[ChatResult, LlmStub]:
        return await client.chat(settings_for(stub, provider, **overrides), SYSTEM, USER), stub

    return with_stub(scenario)


# --- what each provider receives ----------------------------------------------------------------------------

def test_openai_gets_a_bearer_key_and_system_and_user_messages():
    _, stub = one_call("openai")
    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {stub.api_key}"
    assert request.headers["host"] == f"127.0.0.1:{stub.port}"
    assert request.body == {"model": "test-model", "messages": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]}


def test_anthropic_gets_its_key_header_version_max_tokens_and_a_top_level_system():
    _, stub = one_call("anthropic")
    [request] = stub.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == stub.api_key
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body["model"] == "test-model"
    assert request.body["system"] == SYSTEM
    assert request.body["messages"] == [{"role": "user", "content": USER}]
    assert isinstance(request.body["max_tokens"], int) and request.body["max_tokens"] > 0


def test_ollama_gets_a_non_streaming_chat_without_a_key():
    _, stub = one_call("ollama")
    [request] = stub.requests
    assert request.path == "/api/chat"
    assert request.body["stream"] is False
    assert request.body["model"] == "test-model"
    assert request.body["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    assert "authorization" not in request.headers


def test_openai_compatible_appends_the_chat_path_to_the_base_urls_own_path():
    async def scenario(stub: LlmStub, client: LlmClient) -> str:
        await client.chat(settings_for(stub, "openai_compatible", base_url=stub.base_url + "/openai/"), SYSTEM, USER)
        return stub.requests[0].path

    assert with_stub(scenario) == "/openai/v1/chat/completions"


# --- answers -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama", "openai_compatible"])
def test_it_returns_the_models_text_and_token_counts(provider):
    result, _ = one_call(provider)
    assert result == ChatResult('{"index": 0}', 42, 7, provider, "test-model")


def test_the_answer_can_depend_on_what_the_model_was_asked():
    async def scenario(stub: LlmStub, client: LlmClient) -> list[str]:
        stub.answer = lambda user_text: '{"index": 1}' if "orders" in user_text else '{"index": 0}'
        settings = settings_for(stub)
        return [(await client.chat(settings, SYSTEM, text)).text for text in ("GET /orders/1", "GET /users/1")]

    assert with_stub(scenario) == ['{"index": 1}', '{"index": 0}']


def test_it_counts_calls_and_tokens_by_provider_and_outcome():
    async def scenario(stub: LlmStub, client: LlmClient) -> dict[tuple[str, str], dict[str, int]]:
        await client.chat(settings_for(stub), SYSTEM, USER)
        await client.chat(settings_for(stub), SYSTEM, USER)
        with pytest.raises(ProviderError):
            await client.chat(settings_for(stub, api_key="sk-wrong"), SYSTEM, USER)
        return client.stats()

    assert with_stub(scenario) == {
        ("openai", "ok"): {"calls": 2, "input_tokens": 84, "output_tokens": 14},
        ("openai", "auth"): {"calls": 1, "input_tokens": 0, "output_tokens": 0},
    }


# --- every failure becomes one ProviderError ---------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_refused_key_is_an_auth_error_that_never_shows_the_key(provider):
    error = chat_error(lambda stub: None, provider, api_key="sk-wrong-secret")
    assert (error.kind, error.status) == ("auth", 401)
    assert provider in error.message
    assert "sk-wrong-secret" not in str(error)


def test_429_is_rate_limited_with_the_seconds_of_retry_after():
    error = chat_error(lambda stub: stub.rate_limit(retry_after="7"))
    assert (error.kind, error.status, error.retry_after) == ("rate_limited", 429, 7.0)


def test_after_a_429_the_provider_is_not_called_again_until_its_retry_after_has_passed():
    now = [1_800_000_000.0]

    async def scenario(stub: LlmStub, client: LlmClient) -> list[str]:
        client.clock = lambda: now[0]
        settings = settings_for(stub, "openai")
        stub.rate_limit(retry_after="7")
        outcomes = []
        for advance in (0.0, 3.0, 5.0):  # asked at 0 s (429), 3 s (resting), 8 s (asked again)
            now[0] += advance
            if advance == 5.0:
                stub.behave()
            try:
                await client.chat(settings, SYSTEM, USER)
                outcomes.append("ok")
            except ProviderError as exc:
                outcomes.append(exc.kind)
        assert len(stub.requests) == 2
        return outcomes

    assert with_stub(scenario) == ["rate_limited", "rate_limited", "ok"]


def test_retry_after_as_an_http_date_counts_from_the_clients_clock():
    now = 1_800_000_000.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True).encode(), now) == 30.0
    assert retry_after_seconds(b"soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_a_5xx_is_a_server_error():
    error = chat_error(lambda stub: stub.fail(503), "anthropic")
    assert (error.kind, error.status) == ("server", 503)


def test_another_4xx_is_refused():
    error = chat_error(lambda stub: stub.fail(404))
    assert (error.kind, error.status) == ("refused", 404)


def test_an_answer_that_is_not_json_is_a_bad_answer():
    assert chat_error(lambda stub: stub.garbage()).kind == "bad_answer"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
def test_an_answer_without_text_is_a_bad_answer(provider):
    def empty(stub: LlmStub) -> None:
        stub.answer = lambda user_text: "  "

    assert chat_error(empty, provider).kind == "bad_answer"


def test_a_slow_provider_is_a_timeout_within_timeout_s():
    started = time.monotonic()
    error = chat_error(lambda stub: setattr(stub, "delay", 3.0), timeout_s=0.2)
    assert error.kind == "timeout"
    assert time.monotonic() - started < 2.0


def test_a_closed_port_is_unreachable():
    async def scenario() -> ProviderError:
        settings = ProviderSettings("openai_compatible", "m", base_url=f"http://127.0.0.1:{refused_port()}")
        with pytest.raises(ProviderError) as caught:
            await LlmClient().chat(settings, SYSTEM, USER)
        return caught.value

    error = asyncio.run(scenario())
    assert (error.kind, error.status) == ("unreachable", None)


def test_a_provider_that_closes_the_connection_is_a_server_error():
    assert chat_error(lambda stub: stub.close_connections()).kind == "server"


def test_a_full_slot_fails_fast_as_busy_and_frees_when_the_call_ends():
    async def scenario(stub: LlmStub, client: LlmClient) -> tuple[str, str, str]:
        settings = settings_for(stub, max_concurrency=1)
        stub.hold()
        first = asyncio.create_task(client.chat(settings, SYSTEM, USER))
        while not stub.requests:
            await asyncio.sleep(0.005)
        with pytest.raises(ProviderError) as caught:
            await client.chat(settings, SYSTEM, USER)
        stub.release()
        answered = (await first).text
        again = (await client.chat(settings, SYSTEM, USER)).text
        return caught.value.kind, answered, again

    assert with_stub(scenario) == ("busy", '{"index": 0}', '{"index": 0}')


# --- pooling -------------------------------------------------------------------------------------------------

def test_sequential_calls_reuse_one_connection():
    async def scenario(stub: LlmStub, client: LlmClient) -> tuple[int, int]:
        for provider in ("openai", "anthropic", "ollama", "openai", "anthropic"):
            await client.chat(settings_for(stub, provider), SYSTEM, USER)
        return len(stub.requests), stub.connections

    assert with_stub(scenario) == (5, 1)


def test_a_kept_alive_connection_closed_under_a_call_is_retried_once_on_a_new_one():
    async def scenario(stub: LlmStub, client: LlmClient) -> tuple[str, int, int]:
        await client.chat(settings_for(stub), SYSTEM, USER)
        stub.close_connections(times=1)
        text = (await client.chat(settings_for(stub), SYSTEM, USER)).text
        return text, len(stub.requests), stub.connections

    assert with_stub(scenario) == ('{"index": 0}', 3, 2)


# --- names, base URLs and keys -----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("openai", ("openai", "https://api.openai.com")),
    ("anthropic", ("anthropic", "https://api.anthropic.com")),
    ("ollama", ("ollama", "http://127.0.0.1:11434")),
    ("groq", ("openai_compatible", "https://api.groq.com/openai")),
    ("mistral", ("openai_compatible", "https://api.mistral.ai")),
    ("xai", ("openai_compatible", "https://api.x.ai")),
])
def test_each_provider_name_has_its_wire_format_and_default_base_url(name, expected):
    assert resolve_provider(name, "") == expected


def test_a_given_base_url_wins_without_its_trailing_slash():
    assert resolve_provider("openai_compatible", "http://vllm:8000/") == ("openai_compatible", "http://vllm:8000")
    assert resolve_provider("ollama", "http://gpu-box:11434") == ("ollama", "http://gpu-box:11434")


def test_cohere_is_refused_with_the_way_to_reach_it():
    with pytest.raises(ValueError, match="openai_compatible.*compatibility"):
        resolve_provider("cohere", "")


@pytest.mark.parametrize(("name", "base_url", "says"), [
    ("gemini", "", "unknown provider 'gemini'"),
    ("openai_compatible", "", "needs a base_url"),
    ("openai_compatible", "ftp://host", "http:// or https://"),
    ("openai_compatible", "http://host:8000/v1", "ends with /v1"),
    ("openai_compatible", "http://user:pw@host", "credentials"),
])
def test_it_refuses_what_it_cannot_call(name, base_url, says):
    with pytest.raises(ValueError, match=says):
        resolve_provider(name, base_url)


def test_the_key_comes_from_the_providers_environment_variable():
    environ = {"GROQ_API_KEY": "gsk-env", "OPENAI_API_KEY": "sk-env"}
    assert api_key_from_env("groq", environ) == "gsk-env"
    assert api_key_from_env("ollama", environ) == ""
    assert ProviderSettings.build("openai", "gpt", environ=environ).api_key == "sk-env"
    assert ProviderSettings.build("openai", "gpt", environ=environ, api_key="sk-given").api_key == "sk-given"


def test_a_provider_that_needs_a_key_refuses_to_build_without_one():
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        ProviderSettings.build("anthropic", "claude", environ={})


def test_settings_never_show_the_key():
    assert "sk-secret" not in repr(ProviderSettings("openai", "gpt", api_key="sk-secret"))


# --- the official SDKs accept the stub's answers (so the stub speaks the real format) ------------------------

def test_the_official_openai_sdk_reads_the_stubs_answer():
    openai = pytest.importorskip("openai")
    with LlmStub() as stub:
        client = openai.OpenAI(api_key=stub.api_key, base_url=stub.base_url + "/v1", max_retries=0)
        completion = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hello"}])
    assert completion.choices[0].message.content == '{"index": 0}'
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (42, 7)


def test_the_official_anthropic_sdk_reads_the_stubs_answer():
    anthropic = pytest.importorskip("anthropic")
    with LlmStub() as stub:
        client = anthropic.Anthropic(api_key=stub.api_key, base_url=stub.base_url, max_retries=0)
        message = client.messages.create(
            model="test-model", max_tokens=16, messages=[{"role": "user", "content": "hello"}])
    assert message.content[0].text == '{"index": 0}'
    assert (message.usage.input_tokens, message.usage.output_tokens) == (42, 7)
