"""Prometheus text exposition (format 0.0.4) of the gateway's combined figures, after django-prometheus's own.

Metric families (all workers of the gateway combined, see metrics.procfiles):

    rusta_requests_total{route,method,status_class}      counter
    rusta_request_duration_seconds{route}                histogram (client-facing time)
    rusta_upstream_duration_seconds{backend}             histogram (until the backend's response head)
    rusta_upstream_errors_total{backend,kind}            counter: refused, dns, reset, timeout, invalid
    rusta_connections_active / rusta_connections_peak    gauges (peak: the sum of each worker's peak)
    rusta_circuit_breaker_state{route,backend}           gauge: 0 closed, 1 half-open, 2 open
    rusta_circuit_breaker_opens_total{route,backend}     counter (moves to open, sampled every second)
    rusta_rate_limited_total{route}                      counter
    rusta_tls_handshake_errors_total{reason}             counter: no_certificate, client_certificate,
                                                         protocol_version, other
    rusta_cache_requests_total{route,result}             counter: hit, miss
    rusta_cache_stores_total{route}                      counter: answers stored in the response cache
    rusta_cache_stored_bytes_total{route}                counter: body bytes of those answers
    rusta_bytes_total{route,direction}                   counter: in, out
    rusta_websocket_connections_open{route}              gauge: WebSocket tunnels open now
    rusta_websocket_connections_total{route}             counter: tunnels opened
    rusta_websocket_messages_total{route,direction}      counter: in (from clients), out (to clients)
    rusta_websocket_bytes_total{route,direction}         counter: message payload bytes, in and out
    rusta_grpc_calls_total{route,grpc_status}            counter: gRPC calls by the status their client got
    rusta_abuse_actions_total{route,action}              counter: 429s of abuse sanctions: block, lower,
                                                         personalized
    rusta_abuse_overflow_total{route}                    counter: requests counted under client `overflow`
    rusta_ai_decisions_total{route,strategy,source}      counter: source model, llm, cache, fallback
    rusta_ai_decision_duration_seconds{route,strategy}   histogram over protocols.ai.records.DECISION_BOUNDS
    rusta_ai_fallbacks_total{route,strategy,reason}      counter
    rusta_ai_model_agreement_total{route,result}         counter: agreed, disagreed (local model vs the LLM)
    rusta_ai_llm_calls_total{provider,outcome}           counter: outcome ok or an error kind
    rusta_ai_llm_tokens_total{provider,direction}        counter: input, output
    rusta_ai_anomalies_total{route,action}               counter: shadow, routed, refused
    rusta_discovery_lookups_total{route,name,outcome}    counter: ok, nxdomain, empty, timeout, error
    rusta_discovery_addresses{route,name}                gauge: addresses in use (the most of any worker)
    rusta_discovery_last_change_timestamp_seconds{route,name}   gauge: when they last changed (epoch s)
    rusta_discovery_last_success_timestamp_seconds{route,name}  gauge: when the name last resolved (epoch s)
    rusta_plugin_calls_total{plugin,phase}               counter (AI routing counts as plugin ai_routing)
    rusta_plugin_errors_total{plugin,phase,kind}         counter: raised, timeout, bad_result
    rusta_plugin_seconds_total{plugin,phase}             counter: seconds spent in the phase calls
    rusta_llm_requests_total{route,model,consumer,status_class}   counter: requests of LLM routes
    rusta_llm_tokens_total{route,model,consumer,kind}    counter: input (whole prompt), output, cached_input
    rusta_llm_cost_total{route,model,consumer}           counter: currency units of the route's budgets, exact
    rusta_llm_time_to_first_token_seconds{route,model}   histogram (streamed answers)
    rusta_llm_output_tokens_per_second{route,model}      histogram over protocols.llm.metrics.TPS_BOUNDS (streamed)
    rusta_llm_fallbacks_total{route,target,reason}       counter: targets passed over, by reason
    rusta_build_info{version}                            gauge, always 1
    rusta_metrics_workers                                gauge: workers whose figures are included
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from metrics.procfiles import Combined
from protocols.ai.records import DECISION_BOUNDS
from protocols.llm.budgets.money import format_micros
from protocols.llm.metrics import TPS_BOUNDS
from protocols.recorder import LATENCY_BOUNDS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LE = tuple(repr(bound) for bound in LATENCY_BOUNDS) + ("+Inf",)
_AI_LE = tuple(repr(bound) for bound in DECISION_BOUNDS) + ("+Inf",)
_TPS_LE = tuple(repr(bound) for bound in TPS_BOUNDS) + ("+Inf",)


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def render(combined: Combined, version: str) -> str:
    """The gateway's families as exposition text (ends with a newline)."""
    totals = combined.totals
    lines: list[str] = []

    lines += _family("rusta_requests_total", "counter", "Requests answered by the proxy.")
    for (route, method, status_class), value in sorted(totals.requests.items()):
        lines.append(f"rusta_requests_total{_labels(route=route, method=method, status_class=status_class)} "
                     f"{value}")

    lines += _histogram("rusta_request_duration_seconds", "Time from the request's arrival to the end of the "
                        "answer, as the client sees it.", "route", totals.request_seconds.items())
    lines += _histogram("rusta_upstream_duration_seconds", "Time from sending a request upstream to the "
                        "backend's response head.", "backend", totals.upstream_seconds.items())

    lines += _family("rusta_upstream_errors_total", "counter",
                     "Failed upstream attempts by backend and kind (refused, dns, reset, timeout, invalid).")
    for (backend, kind), value in sorted(totals.upstream_errors.items()):
        lines.append(f"rusta_upstream_errors_total{_labels(backend=backend, kind=kind)} {value}")

    lines += _family("rusta_connections_active", "gauge", "Requests and tunnels in progress.")
    lines.append(f"rusta_connections_active {totals.connections_active}")
    lines += _family("rusta_connections_peak", "gauge",
                     "The most requests and tunnels in progress at once, summed over each worker's own peak.")
    lines.append(f"rusta_connections_peak {totals.connections_peak}")

    lines += _family("rusta_circuit_breaker_state", "gauge",
                     "Circuit breaker state per route and backend: 0 closed, 1 half-open, 2 open.")
    for (route, backend), value in sorted(combined.breakers.items()):
        lines.append(f"rusta_circuit_breaker_state{_labels(route=route, backend=backend)} {value}")

    lines += _family("rusta_circuit_breaker_opens_total", "counter",
                     "Times a circuit breaker was seen moving to open (sampled every second).")
    for (route, backend), value in sorted(totals.breaker_opens.items()):
        lines.append(f"rusta_circuit_breaker_opens_total{_labels(route=route, backend=backend)} {value}")

    lines += _family("rusta_rate_limited_total", "counter", "Requests rejected by a rate limit.")
    for route, value in sorted(totals.rate_limited.items()):
        lines.append(f"rusta_rate_limited_total{_labels(route=route)} {value}")

    lines += _family("rusta_tls_handshake_errors_total", "counter",
                     "Failed TLS handshakes on the proxy's TLS listener, by reason (no_certificate for the name, "
                     "client_certificate, protocol_version, other).")
    for reason, value in sorted(totals.tls_handshake_errors.items()):
        lines.append(f"rusta_tls_handshake_errors_total{_labels(reason=reason)} {value}")

    lines += _family("rusta_cache_requests_total", "counter", "Response cache lookups by result (hit, miss).")
    for (route, result), value in sorted(totals.cache.items()):
        lines.append(f"rusta_cache_requests_total{_labels(route=route, result=result)} {value}")
    stored = totals.cache_stored
    lines += _family("rusta_cache_stores_total", "counter", "Answers stored in the response cache.")
    for (route, what), value in sorted(stored.items()):
        if what == "entries":
            lines.append(f"rusta_cache_stores_total{_labels(route=route)} {value}")
    lines += _family("rusta_cache_stored_bytes_total", "counter", "Body bytes of the answers stored in the response "
                     "cache.")
    for (route, what), value in sorted(stored.items()):
        if what == "bytes":
            lines.append(f"rusta_cache_stored_bytes_total{_labels(route=route)} {value}")

    lines += _family("rusta_bytes_total", "counter", "Body bytes received from clients (in) and sent to them "
                     "(out).")
    for (route, direction), value in sorted(totals.bytes.items()):
        lines.append(f"rusta_bytes_total{_labels(route=route, direction=direction)} {value}")

    lines += _websocket(totals.websocket)
    lines += _family("rusta_grpc_calls_total", "counter", "gRPC calls, by the grpc-status their client got.")
    for (route, code), value in sorted(totals.grpc_calls.items()):
        lines.append(f"rusta_grpc_calls_total{_labels(route=route, grpc_status=code)} {value}")
    lines += _family("rusta_abuse_actions_total", "counter",
                     "Requests refused by an abuse sanction: block (a verdict's 429 client_blocked), lower (a 429 "
                     "under a limit a verdict lowered), personalized (a 429 under the client's own limit).")
    for (route, action), value in sorted(totals.abuse_actions.items()):
        lines.append(f"rusta_abuse_actions_total{_labels(route=route, action=action)} {value}")
    lines += _family("rusta_abuse_overflow_total", "counter",
                     "Requests of routes with an abuse block counted under the client `overflow`: the per-window "
                     "client counters were full (RUSTA_ABUSE_MAX_CLIENTS).")
    for route, value in sorted(totals.abuse_overflow.items()):
        lines.append(f"rusta_abuse_overflow_total{_labels(route=route)} {value}")
    lines += _ai(combined.ai)
    lines += _discovery(combined.discovery)
    lines += _plugins(combined.plugins)
    lines += _llm(combined.llm)

    lines += _family("rusta_build_info", "gauge", "Always 1; the version label says which Rusta runs.")
    lines.append(f"rusta_build_info{_labels(version=version)} 1")
    lines += _family("rusta_metrics_workers", "gauge", "Gateway worker processes whose figures are included.")
    lines.append(f"rusta_metrics_workers {combined.workers}")
    return "\n".join(lines) + "\n"


_WS_DIRECTIONS = (("in", "from_client"), ("out", "to_client"))


def _websocket(counters: dict[tuple[str, str], int]) -> list[str]:
    """The WebSocket proxy's families, per route (counters from protocols.websocket.metrics)."""
    routes = sorted({route for route, _ in counters})
    lines = _family("rusta_websocket_connections_open", "gauge", "WebSocket tunnels open now.")
    lines += [f"rusta_websocket_connections_open{_labels(route=route)} {counters.get((route, 'open'), 0)}"
              for route in routes]
    lines += _family("rusta_websocket_connections_total", "counter", "WebSocket tunnels opened.")
    lines += [f"rusta_websocket_connections_total{_labels(route=route)} {counters.get((route, 'opened'), 0)}"
              for route in routes]
    for name, what in (("messages", "WebSocket messages relayed"), ("bytes", "WebSocket message payload bytes")):
        family = f"rusta_websocket_{name}_total"
        lines += _family(family, "counter", f"{what}: in from clients, out to clients.")
        for route in routes:
            for direction, side in _WS_DIRECTIONS:
                value = counters.get((route, f"{name}_{side}"), 0)
                lines.append(f"{family}{_labels(route=route, direction=direction)} {value}")
    return lines


def _ai(ai: dict[str, Any]) -> list[str]:
    """AI routing's families, from the workers' combined record (protocols.ai.records' snapshot shape)."""
    lines = _family("rusta_ai_decisions_total", "counter",
                    "AI routing decisions by where the answer came from (model, llm, cache, fallback).")
    for route, strategy, source, value in sorted(ai.get("decisions", [])):
        lines.append(f"rusta_ai_decisions_total{_labels(route=route, strategy=strategy, source=source)} {value}")

    lines += _family("rusta_ai_decision_duration_seconds", "histogram",
                     "Time an AI routing decision kept the request waiting.")
    for route, strategy, histogram in sorted(ai.get("decision_seconds", [])):
        labels = {"route": route, "strategy": strategy}
        lines += _histogram_lines("rusta_ai_decision_duration_seconds", labels, histogram, _AI_LE)

    lines += _family("rusta_ai_fallbacks_total", "counter",
                     "AI routing decisions that fell back to the route's normal balancing or fallback backend, by "
                     "reason.")
    for route, strategy, reason, value in sorted(ai.get("fallbacks", [])):
        lines.append(f"rusta_ai_fallbacks_total{_labels(route=route, strategy=strategy, reason=reason)} {value}")

    lines += _family("rusta_ai_model_agreement_total", "counter",
                     "Requests both the local model and the LLM answered, by whether they agreed.")
    for route, agreed, compared in sorted(ai.get("agreement", [])):
        lines.append(f"rusta_ai_model_agreement_total{_labels(route=route, result='agreed')} {agreed}")
        lines.append(f"rusta_ai_model_agreement_total{_labels(route=route, result='disagreed')} "
                     f"{compared - agreed}")

    llm = sorted(ai.get("llm", []))
    lines += _family("rusta_ai_llm_calls_total", "counter", "Calls to LLM providers by outcome (ok or an error kind).")
    for provider, outcome, calls, _, _ in llm:
        lines.append(f"rusta_ai_llm_calls_total{_labels(provider=provider, outcome=outcome)} {calls}")
    tokens: dict[tuple[str, str], int] = {}
    for provider, _, _, input_tokens, output_tokens in llm:
        tokens[(provider, "input")] = tokens.get((provider, "input"), 0) + input_tokens
        tokens[(provider, "output")] = tokens.get((provider, "output"), 0) + output_tokens
    lines += _family("rusta_ai_llm_tokens_total", "counter", "Tokens sent to (input) and received from (output) LLM "
                     "providers.")
    for (provider, direction), value in sorted(tokens.items()):
        lines.append(f"rusta_ai_llm_tokens_total{_labels(provider=provider, direction=direction)} {value}")

    lines += _family("rusta_ai_anomalies_total", "counter",
                     "Requests found anomalous, by what was done (shadow: only recorded, routed, refused).")
    for route, action, value in sorted(ai.get("anomalies", [])):
        lines.append(f"rusta_ai_anomalies_total{_labels(route=route, action=action)} {value}")
    return lines


def _discovery(discovery: dict[str, Any]) -> list[str]:
    """Backend discovery's families, from the workers' combined figures (protocols.discovery.figures' shape)."""
    lines = _family("rusta_discovery_lookups_total", "counter",
                    "DNS resolutions of discovered backend names by outcome (ok, nxdomain, empty, timeout, error).")
    for route, name, outcome, value in discovery.get("lookups", []):
        lines.append(f"rusta_discovery_lookups_total{_labels(route=route, name=name, outcome=outcome)} {value}")
    names = discovery.get("names", [])
    lines += _family("rusta_discovery_addresses", "gauge",
                     "Addresses a discovered backend name stands for now (kept through failed resolutions).")
    lines += [f"rusta_discovery_addresses{_labels(route=route, name=name)} {addresses}"
              for route, name, addresses, _, _ in names]
    for family, column, what in (("rusta_discovery_last_change_timestamp_seconds", 3, "last changed addresses"),
                                 ("rusta_discovery_last_success_timestamp_seconds", 4, "last resolved")):
        lines += _family(family, "gauge", f"Unix time at which a discovered backend name {what}.")
        lines += [f"{family}{_labels(route=row[0], name=row[1])} {_number(float(row[column]))}"
                  for row in names if row[column] is not None]
    return lines


def _plugins(plugins: dict[str, Any]) -> list[str]:
    """The plugins' families (their phases' calls, failures and time), from the workers' combined counters;
    AI routing counts as the plugin `ai_routing`."""
    lines = _family("rusta_plugin_calls_total", "counter", "Plugin phase calls, by plugin and phase.")
    for plugin, phase, value in plugins.get("calls", []):
        lines.append(f"rusta_plugin_calls_total{_labels(plugin=plugin, phase=phase)} {value}")
    lines += _family("rusta_plugin_errors_total", "counter",
                     "Plugin phase calls that failed: raised, timeout (overran the budget) or bad_result.")
    for plugin, phase, kind, value in plugins.get("errors", []):
        lines.append(f"rusta_plugin_errors_total{_labels(plugin=plugin, phase=phase, kind=kind)} {value}")
    lines += _family("rusta_plugin_seconds_total", "counter", "Time spent in plugin phase calls.")
    for plugin, phase, value in plugins.get("seconds", []):
        lines.append(f"rusta_plugin_seconds_total{_labels(plugin=plugin, phase=phase)} {_number(float(value))}")
    return lines


def _llm(llm: dict[str, Any]) -> list[str]:
    """The LLM routes' families, from the workers' combined counters (protocols.llm.metrics.snapshot's shape)."""
    lines = _family("rusta_llm_requests_total", "counter", "Requests of LLM routes by route, model that answered "
                    "(empty when none did), consumer and status class.")
    for route, model, consumer, status, value in llm.get("requests", []):
        labels = _labels(route=route, model=model, consumer=consumer, status_class=status)
        lines.append(f"rusta_llm_requests_total{labels} {value}")
    lines += _family("rusta_llm_tokens_total", "counter", "Tokens of LLM routes' answered requests: input (the "
                     "whole prompt, cached included), output, cached_input (read from the provider's cache).")
    for route, model, consumer, kind, value in llm.get("tokens", []):
        lines.append(f"rusta_llm_tokens_total{_labels(route=route, model=model, consumer=consumer, kind=kind)} "
                     f"{value}")
    lines += _family("rusta_llm_cost_total", "counter", "Cost of LLM routes' answers in currency units of the "
                     "route's budgets (exact: summed in micro-units).")
    for route, model, consumer, micros in llm.get("cost", []):
        lines.append(f"rusta_llm_cost_total{_labels(route=route, model=model, consumer=consumer)} "
                     f"{format_micros(int(micros))}")
    for name, section, le, help_text in (
            ("rusta_llm_time_to_first_token_seconds", "ttft", _LE,
             "Time from asking a streamed LLM request's first target to the first token of its answer "
             "(fallbacks included)."),
            ("rusta_llm_output_tokens_per_second", "tps", _TPS_LE,
             "Output tokens per second of streamed LLM answers, from their first token to their end.")):
        lines += _family(name, "histogram", help_text)
        for route, model, histogram in llm.get(section, []):
            lines += _histogram_lines(name, {"route": route, "model": model}, histogram, le)
    lines += _family("rusta_llm_fallbacks_total", "counter", "LLM targets passed over, by reason (rate_limited, "
                     "server_error, context_length, timeout, unreachable, format, no_key).")
    for route, target, reason, value in llm.get("fallbacks", []):
        lines.append(f"rusta_llm_fallbacks_total{_labels(route=route, target=target, reason=reason)} {value}")
    return lines


def _histogram_lines(name: str, labels: dict[str, str], histogram: list[float], le: tuple[str, ...]) -> list[str]:
    """One label set's buckets (cumulative), sum and count; `histogram` is bucket counts then the sum."""
    lines = []
    cumulative = 0
    for index, bound in enumerate(le):
        cumulative += int(histogram[index])
        lines.append(f"{name}_bucket{_labels(**labels, le=bound)} {cumulative}")
    lines.append(f"{name}_sum{_labels(**labels)} {_number(histogram[len(le)])}")
    lines.append(f"{name}_count{_labels(**labels)} {cumulative}")
    return lines


def _histogram(name: str, help_text: str, label: str, rows: Iterable[tuple[str, list[float]]]) -> list[str]:
    lines = _family(name, "histogram", help_text)
    for value, histogram in sorted(rows):
        lines += _histogram_lines(name, {label: value}, histogram, _LE)
    return lines
