"""GET /api/metrics/llm/spend/ and /api/metrics/llm/spend/summary/: a real gateway's LLM answers (loopback
providers) through the flusher into the history, read back as exactly the providers' usage times the targets'
prices, per consumer and model; staff only; bad parameters named in a 400."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics import history
from metrics.flusher import WorkerFlusher
from metrics.models import LlmSpendRawPoint
from protocols.llm.gateway import LlmGateway
from protocols.llm.metrics import LlmMetrics, snapshot
from protocols.recorder import Recorder
from protocols.upstream import UpstreamClient
from tests.protocols.llm.test_gateway_front_doors import LlmServer, sdk_clients, serve, target
from tests.support.llm_providers import ProviderStub
from tests.support.llm_wire import Usage as StubUsage

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
RANGE = {"start": "2026-11-26T12:00:00Z", "end": "2026-11-26T12:05:00Z"}
PRICES = {"input": 2.5, "output": 10.0, "cached_input": 1.25}  # per million tokens


def spend(api, path: str = "", **params):
    return api.get(f"/api/metrics/llm/spend/{path}", params)


def run_gateway(metrics: LlmMetrics) -> None:
    """alice asks twice (once streamed), bob once, of a route whose two targets price the same usage apart."""
    with ProviderStub() as main, ProviderStub() as mini:
        main.usage = StubUsage(input=200, output=40, cached_input=1000)
        mini.usage = StubUsage(input=30, output=7, cached_input=0)
        app = LlmServer([target("main", "openai", "gpt-4o", main, price_per_million=PRICES),
                         target("mini", "openai", "gpt-4o-mini", mini,
                                price_per_million={"input": 0.15, "output": 0.6})],
                        gateway=LlmGateway(UpstreamClient(), metrics=metrics))
        runner = serve(app)
        try:
            oai, _ = sdk_clients(runner.port)
            ask = [{"role": "user", "content": "Hi"}]
            oai.chat.completions.create(model="gpt-4o", messages=ask)
            list(oai.chat.completions.create(model="gpt-4o", messages=ask, stream=True,
                                             stream_options={"include_usage": True}))
            main.fail(500)  # bob's request falls back to the cheaper target
            oai.chat.completions.create(model="gpt-4o", messages=ask, extra_headers={"x-test-consumer": "bob"})
        finally:
            runner.stop()


@pytest.fixture
def stored(tmp_path) -> LlmMetrics:
    """The run's spend, written by a flusher into the history in the bucket of T0."""
    metrics = LlmMetrics()
    run_gateway(metrics)
    flusher = WorkerFlusher(Recorder(), tmp_path, history.DatabaseStore(), history_every=0.0,
                            clock=lambda: T0.timestamp(), breakers=list, llm=lambda: snapshot(metrics),
                            llm_window=metrics.take_window)
    flusher._thread.start()  # what start() does, without scheduling ticks on a loop
    flusher.stop()
    return metrics


def test_the_history_answers_exactly_the_providers_usage_times_the_prices(api, stored):
    # alice: (200 x 2.5 + 40 x 10 + 1000 x 1.25) per million = 2150 micro-units a request, twice.
    # bob: (30 x 0.15 + 7 x 0.6) per million = 8.7 micro-units, kept as the gateway priced it.
    metrics_cost = {(model, consumer): micros for _route, model, consumer, micros in snapshot(stored)["cost"]}
    assert metrics_cost[("gpt-4o", "alice")] == 4300
    body = spend(api, interval="10s", by="consumer", **RANGE).json()
    [point] = body["points"]
    assert point["t"] == "2026-11-26T12:00:00Z"
    assert (point["requests"], point["input_tokens"], point["output_tokens"], point["cached_input_tokens"]) == (
        3, 2 * 1200 + 30, 2 * 40 + 7, 2000)
    assert point["cost_micros"] == sum(metrics_cost.values())
    alice, bob = body["series"]
    assert (alice["consumer"], alice["cost"], alice["cost_micros"]) == ("alice", "0.0043", 4300)
    assert (bob["consumer"], bob["cost_micros"]) == ("bob", metrics_cost[("gpt-4o-mini", "bob")])
    assert spend(api, interval="10s", consumer="bob", model="gpt-4o", **RANGE).json()["points"] == []


def test_the_summary_gives_each_consumers_spend_per_model_and_the_total(api, stored):
    body = spend(api, "summary/", **RANGE).json()
    rows = [(r["consumer"], r["model"], r["requests"], r["input_tokens"], r["output_tokens"],
             r["cached_input_tokens"], r["cost"]) for r in body["rows"]]
    bob_micros = LlmSpendRawPoint.objects.get(consumer="bob").cost_micros
    assert rows[0] == ("alice", "gpt-4o", 2, 2400, 80, 2000, "0.0043")
    assert rows[1][:6] == ("bob", "gpt-4o-mini", 1, 30, 7, 0)
    assert body["total"]["cost_micros"] == 4300 + bob_micros and body["total"]["requests"] == 3


def test_a_rolled_up_range_answers_the_same_cost(api, stored):
    from metrics import rollups

    rollups.run_all(T0 + timedelta(hours=2))
    raw = spend(api, interval="10s", **RANGE).json()["points"]
    minute = spend(api, interval="1m", **RANGE).json()["points"]
    assert [p["cost_micros"] for p in minute] == [p["cost_micros"] for p in raw]
    whole_hour = spend(api, "summary/", start="2026-11-26T12:00:00Z", end="2026-11-26T13:00:00Z").json()
    assert whole_hour["total"]["cost_micros"] == raw[0]["cost_micros"]


@pytest.mark.parametrize(("params", "field"), [
    ({"interval": "2m"}, "interval"),
    ({"by": "backend"}, "by"),
    ({"start": "yesterday"}, "start"),
    ({"start": "2026-11-26T12:05:00Z", "end": "2026-11-26T12:00:00Z"}, "start"),
    ({"interval": "10s", "start": "2026-11-01T00:00:00Z", "end": "2026-11-26T00:00:00Z"}, "interval"),
])
def test_a_bad_parameter_is_a_400_naming_it(api, params, field):
    response = spend(api, **params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_bad_summary_range_is_a_400(api):
    response = spend(api, "summary/", start="2026-11-26T12:05:00Z", end="2026-11-26T12:00:00Z")
    assert response.status_code == 400 and "start" in response.json()["errors"]


def test_the_spend_is_for_staff_only(client, plain_user):
    for path in ("", "summary/"):
        assert client.get(f"/api/metrics/llm/spend/{path}").status_code in (401, 403)
    client.force_login(plain_user)
    assert client.get("/api/metrics/llm/spend/summary/").status_code == 403
