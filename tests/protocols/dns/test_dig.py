"""The forwarder answers `dig`, Debian's bind9-dnsutils client, over UDP and TCP, with and without EDNS."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

DIG = shutil.which("dig")
pytestmark = pytest.mark.skipif(DIG is None, reason="dig is not installed (apt-get install -y bind9-dnsutils)")


def dig(port: int, *args: str) -> str:
    """dig's full output for one query to the forwarder; 1 try, 3 s, never the system's resolvers."""
    assert DIG is not None
    result = subprocess.run(
        [DIG, "@127.0.0.1", "-p", str(port), "+tries=1", "+time=3", *args],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def status(output: str) -> str:
    match = re.search(r"status: (\w+)", output)
    assert match, output
    return match.group(1)


def flags(output: str) -> set[str]:
    match = re.search(r";; flags: ([a-z ]+);", output)
    assert match, output
    return set(match.group(1).split())


def answers(output: str) -> list[str]:
    return re.findall(r"^\S+\s+\d+\s+IN\s+A\s+(\S+)$", output, re.MULTILINE)


def test_dig_gets_the_answer_over_udp(running):
    output = dig(running.port, "www.example.test", "A")
    assert status(output) == "NOERROR"
    assert answers(output) == ["192.0.2.1"]


def test_a_second_dig_is_answered_from_the_cache(running, upstream):
    dig(running.port, "www.example.test", "A")
    output = dig(running.port, "www.example.test", "A")
    assert answers(output) == ["192.0.2.1"]
    assert upstream.count("www.example.test.") == 1


def test_dig_over_tcp(running):
    output = dig(running.port, "+tcp", "n42.example.test", "A")
    assert answers(output) == ["203.0.113.42"]


def test_dig_gets_nxdomain_with_the_soa(running):
    output = dig(running.port, "missing.example.test", "A")
    assert status(output) == "NXDOMAIN"
    assert re.search(r"^example\.test\.\s+60\s+IN\s+SOA", output, re.MULTILINE), output


def test_dig_without_edns_falls_back_to_tcp_for_a_large_answer(running, upstream):
    output = dig(running.port, "+noedns", "big.example.test", "A")
    assert "Truncated, retrying in TCP mode" in output
    assert len(answers(output)) == 60
    assert upstream.count("big.example.test.") == 2  # the forwarder's own UDP try and its TCP retry, once


def test_dig_sees_tc_when_the_answer_exceeds_its_buffer(running):
    output = dig(running.port, "+bufsize=1232", "+ignore", "huge.example.test", "A")
    assert "tc" in flags(output)
    assert answers(output) == []


def test_dig_with_a_large_buffer_gets_the_whole_answer_over_udp(running):
    output = dig(running.port, "+bufsize=4096", "+ignore", "huge.example.test", "A")
    assert "tc" not in flags(output)
    assert len(answers(output)) == 200


def test_dig_with_a_mixed_case_name_gets_its_case_back_from_the_cache(running):
    dig(running.port, "www.example.test", "A")
    output = dig(running.port, "WWW.Example.TEST", "A")
    assert re.search(r"^WWW\.Example\.TEST\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1$", output, re.MULTILINE), output
