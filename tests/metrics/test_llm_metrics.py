"""The LLM routes on /metrics: each worker's requests, tokens, cost, histograms and fallbacks summed (a dead
worker's kept), cost shown exactly in currency units, every family accepted by promtool, and the flusher writing
this process's counters into its file."""
from __future__ import annotations

import os
from pathlib import Path

from metrics import exposition, procfiles
from metrics.flusher import WorkerFlusher
from metrics.procfiles import Combined
from protocols.llm.exchange import Fallback, Outcome
from protocols.llm.formats.chat import Usage
from protocols.llm.metrics import LlmMetrics, snapshot
from protocols.recorder import Recorder, Totals
from tests.metrics.test_exposition import needs_promtool, promtool_check
from tests.metrics.test_procfiles import dead_pid


def worker(requests: int, micros: int) -> dict[str, object]:
    """One worker's LLM section: `requests` streamed answers of 100 prompt (60 cached) and 10 output tokens, each
    costing `micros`, and one fallback per request."""
    metrics = LlmMetrics()
    for _ in range(requests):
        outcome = Outcome(status=200, target="backup", model="gpt-4o", complete=True, cost_micros=micros,
                          usage=Usage(input_tokens=100, output_tokens=10, cached_input_tokens=60),
                          first_token_s=0.2, fallbacks=[Fallback("primary", "rate_limited")])
        metrics.record("chat", "alice", outcome, 0.4, streamed=True)
    return snapshot(metrics)


def combined_of(tmp_path: Path, *sections: tuple[int, dict[str, object]]) -> Combined:
    for pid, section in sections:
        procfiles.write(tmp_path, Totals(), [], 1.0, pid=pid, llm=section)
    return procfiles.combined(tmp_path)


def test_the_workers_llm_counters_and_histograms_add_up(tmp_path):
    combined = combined_of(tmp_path, (os.getpid(), worker(3, 1500)), (os.getppid(), worker(2, 1500)))
    llm = combined.llm
    assert llm["requests"] == [["chat", "gpt-4o", "alice", "2xx", 5]]
    assert llm["tokens"] == [["chat", "gpt-4o", "alice", "cached_input", 300],
                             ["chat", "gpt-4o", "alice", "input", 500], ["chat", "gpt-4o", "alice", "output", 50]]
    assert llm["cost"] == [["chat", "gpt-4o", "alice", 7500]]
    assert llm["fallbacks"] == [["chat", "primary", "rate_limited", 5]]
    [[_, _, ttft]] = llm["ttft"]
    [[_, _, tps]] = llm["tps"]
    assert sum(ttft[:-1]) == sum(tps[:-1]) == 5
    assert round(ttft[-1], 6) == 1.0 and round(tps[-1], 6) == 250.0  # 5 x 0.2 s; 5 x 10 tokens in 0.2 s


def test_a_dead_or_stopped_workers_llm_counters_are_kept(tmp_path):
    combined_of(tmp_path, (dead_pid(), worker(4, 1000)), (os.getpid(), worker(1, 1000)))
    assert procfiles.combined(tmp_path).llm["cost"] == [["chat", "gpt-4o", "alice", 5000]]
    procfiles.remove(tmp_path, pid=os.getpid())
    after = procfiles.combined(tmp_path).llm
    assert after["cost"] == [["chat", "gpt-4o", "alice", 5000]]
    assert after["requests"] == [["chat", "gpt-4o", "alice", "2xx", 5]]
    assert sum(after["ttft"][0][2][:-1]) == 5


def test_every_llm_family_is_exposed_with_cost_in_exact_currency_units_and_passes_promtool():
    text = exposition.render(Combined(workers=1, llm=worker(3, 2150)), "1")
    lines = text.splitlines()
    for line in ('rusta_llm_requests_total{route="chat",model="gpt-4o",consumer="alice",status_class="2xx"} 3',
                 'rusta_llm_tokens_total{route="chat",model="gpt-4o",consumer="alice",kind="input"} 300',
                 'rusta_llm_tokens_total{route="chat",model="gpt-4o",consumer="alice",kind="cached_input"} 180',
                 'rusta_llm_tokens_total{route="chat",model="gpt-4o",consumer="alice",kind="output"} 30',
                 'rusta_llm_cost_total{route="chat",model="gpt-4o",consumer="alice"} 0.00645',
                 'rusta_llm_time_to_first_token_seconds_bucket{route="chat",model="gpt-4o",le="0.15"} 0',
                 'rusta_llm_time_to_first_token_seconds_bucket{route="chat",model="gpt-4o",le="0.25"} 3',
                 'rusta_llm_time_to_first_token_seconds_count{route="chat",model="gpt-4o"} 3',
                 'rusta_llm_output_tokens_per_second_bucket{route="chat",model="gpt-4o",le="50.0"} 3',
                 'rusta_llm_output_tokens_per_second_bucket{route="chat",model="gpt-4o",le="+Inf"} 3',
                 'rusta_llm_output_tokens_per_second_sum{route="chat",model="gpt-4o"} 150.0',
                 'rusta_llm_fallbacks_total{route="chat",target="primary",reason="rate_limited"} 3'):
        assert line in lines, line
    needs_promtool()
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_gateway_without_llm_requests_shows_the_families_empty():
    text = exposition.render(Combined(workers=1), "1")
    assert "# TYPE rusta_llm_cost_total counter" in text
    assert "rusta_llm_cost_total{" not in text


def test_each_tick_writes_this_processs_llm_counters_into_its_file(tmp_path):
    metrics = LlmMetrics()
    flusher = WorkerFlusher(Recorder(), tmp_path, None, breakers=list, llm=lambda: snapshot(metrics))
    flusher._thread.start()  # what start() does, without scheduling ticks on a loop
    metrics.record("chat", "bob", Outcome(status=503, error="no_target",
                                          fallbacks=[Fallback("primary", "timeout")]), 30.0, streamed=False)
    flusher.stop()  # its last tick sees the request; the file is folded into dead.json
    llm = procfiles.combined(tmp_path).llm
    assert llm["requests"] == [["chat", "", "bob", "5xx", 1]]
    assert llm["fallbacks"] == [["chat", "primary", "timeout", 1]]
