"""Link-local and cloud metadata addresses, in every spelling a resolver would accept."""
from __future__ import annotations

import pytest

from protocols.guards.egress import link_local_reason


@pytest.mark.parametrize("host", [
    "169.254.169.254", "169.254.0.1", "[fe80::1]", "fe80::1%eth0", "100.100.100.200", "fd00:ec2::254",
    "metadata.google.internal", "METADATA.google.internal.", "metadata", "instance-data",
    "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "168.63.129.16",
])
def test_metadata_and_link_local_hosts_are_recognised(host):
    assert link_local_reason(host) is not None


@pytest.mark.parametrize("host", [
    "10.0.0.5", "127.0.0.1", "::1", "example.com", "api.internal", "169.255.0.1", "fe00::1",
    "metadata.example.com", "1234", "2001:db8::1",
])
def test_ordinary_hosts_are_not(host):
    assert link_local_reason(host) is None
