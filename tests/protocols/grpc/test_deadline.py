"""protocols.grpc.deadline: grpc-timeout read and written, and the call's deadline chosen."""
from __future__ import annotations

import pytest

from protocols.grpc.deadline import Deadline, call_deadline, format_timeout, parse_timeout


@pytest.mark.parametrize(("value", "seconds"), [
    (b"1H", 3600.0), (b"2M", 120.0), (b"3S", 3.0), (b"250m", 0.25), (b"1500u", 0.0015), (b"99999999n", 0.099999999),
])
def test_every_grpc_timeout_unit_is_read(value, seconds):
    assert parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"", b"S", b"123456789S", b"10s", b"-1S", b"1.5S"])
def test_a_malformed_grpc_timeout_is_no_deadline(value):
    assert parse_timeout(value) is None


def test_the_time_left_is_written_in_milliseconds_rounded_up():
    assert format_timeout(0.2501) == b"251m"
    assert format_timeout(0.0) == b"1m"
    assert format_timeout(10 * 86400) == b"864000S"


def test_the_sooner_of_the_clients_deadline_and_the_routes_total_timeout_wins():
    assert call_deadline(b"2S", 5.0) == Deadline(2.0, True)
    assert call_deadline(b"10S", 5.0) == Deadline(5.0, False)
    assert call_deadline(None, 5.0) == Deadline(5.0, False)
    assert call_deadline(b"2S", 0.0) == Deadline(2.0, True)
    assert call_deadline(None, 0.0) == Deadline(None, False)
