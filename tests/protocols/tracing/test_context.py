"""protocols.tracing.context: W3C traceparent continued or started for every proxied request."""
from __future__ import annotations

import re

import pytest

from protocols.tracing import parse, traceparent_for, traceparent_from

VALID = re.compile(rb"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")
CLIENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_request_without_traceparent_starts_a_new_sampled_trace():
    value, trace_id = traceparent_for([(b"host", b"example.com")])
    assert VALID.match(value)
    assert value.endswith(b"-01")
    assert value[3:35].decode() == trace_id


def test_new_traces_get_different_ids():
    assert len({traceparent_from(None)[1] for _ in range(100)}) == 100


def test_the_clients_trace_is_continued_with_a_new_span_id():
    value, trace_id = traceparent_for([(b"traceparent", CLIENT)])
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert value.startswith(b"00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert value[36:52] != b"00f067aa0ba902b7"
    assert VALID.match(value)


def test_the_sampled_flag_is_kept_and_unknown_flags_are_dropped():
    assert traceparent_from(CLIENT[:-2] + b"00")[0].endswith(b"-00")
    assert traceparent_from(CLIENT[:-2] + b"ff")[0].endswith(b"-01")


@pytest.mark.parametrize("value", [
    b"", b"garbage", CLIENT.upper(), CLIENT[:-1], CLIENT + b"-extra",
    b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
])
def test_an_invalid_traceparent_starts_a_new_trace(value):
    sent, trace_id = traceparent_from(value)
    assert VALID.match(sent)
    assert trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_later_version_with_more_fields_is_read_by_its_first_four():
    assert parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next") is not None
    assert traceparent_from(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")[1] == \
        "4bf92f3577b34da6a3ce929d0e0e4736"


def test_two_traceparent_fields_start_a_new_trace():
    _, trace_id = traceparent_for([(b"traceparent", CLIENT), (b"traceparent", CLIENT)])
    assert trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"
