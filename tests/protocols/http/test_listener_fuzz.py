"""A CI-sized fuzz of the proxy listener's request parsing and of route matching: request heads from a grammar of
valid and hostile pieces, each on a fresh connection, and invariants on what the client and the back end see.

Reproducible (derandomized): a failure prints the exact client bytes, what came back and what the back end got.
"""
from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

from protocols.errors import MethodNotAllowed, NoRoute
from protocols.http.headers import host_key, normalize_path
from protocols.http.listener import ListenerLimits
from protocols.table import BackendSpec, CompiledRoute, RouteSpec, RouteTable
from tests.support.proxy import ProxyServer, route
from tests.support.rawhttp import RawConnection
from tests.support.upstream import UpstreamServer

# Derandomized, so every CI run tries the same examples; no "explain" phase, which reruns a failing example many
# times (each may wait for a timeout), so a failure is reported in seconds, shrunk, with its bytes.
FUZZ = settings(max_examples=1500, deadline=None, derandomize=True, database=None, print_blob=True,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MATCHING = settings(FUZZ, max_examples=3000)

# The grammar: for each part of a request, valid pieces and hostile ones. An example makes up to three parts
# hostile (hypothesis picks which), so most requests are nearly valid and the hostile piece is the one that counts.
Pieces = tuple[list[Any], list[Any]]  # (valid, hostile)
METHODS: Pieces = ([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"],
                   [b"TRACE", b"CONNECT", b"PRI", b"get", b"M-SEARCH", b"PROPFIND", b"G_T", b"", b"GE\x00T",
                    b"\xc3\xa9T"])
GAPS: Pieces = ([b" "], [b"  ", b"\t", b" \t"])
ROUTED = [b"/static", b"/static/", b"/items/%s", b"/h/%s", b"/w", b"/items/x/../%s"]  # what the routes serve
SEGMENT_PIECES = [b"a", b"1", b"%41", b"%2e", b"~", b"@", b":", b"'", b"-", b"."]
HOSTILE_PIECES = [b"\\", b"%", b"%0", b"%00", b"%zz", b"%2E%2e", b"%2f", b"#", b"#frag", b"//", b"/", b"..", b"?",
                  b";", b"\xc3\xa9", b"\xe2\x98\x83", b"\x7f", b"\t", b"<", b"{id}", b"*", b" ", b"\x00", b"/./"]
SCHEMES: Pieces = ([b"http://", b"https://"], [b"HTTP://", b"ftp://", b"http:/", b"http:///"])
AUTHORITIES: Pieces = ([b"api.example.com", b"gateway.test:8080", b"eu.example.org", b"[::1]"],
                       [b"user@api.example.com", b"", b"a b", b"exa%41mple.com", b"api.example.com:99999"])
VERSIONS: Pieces = ([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"],
                    [b"HTTP/0.9", None, b"HTTP/2.0", b"HTTP/1.2", b"http/1.1", b"HTTP/1.1 ", b"HTTP/3"])
HOST_NAMES: Pieces = ([b"Host", b"host", b"HOST"], [b"Host ", b"Host\t"])
HOST_VALUES: Pieces = ([b"gateway.test", b"api.example.com", b"API.Example.com:8080", b"eu.example.org",
                        b"[::1]:80", b"127.0.0.1", b"api.example.com  "],
                       [b"", b"a b", b"exa_mple.com", b"x:99999", b"host:port", b"\xc3\xa9.com", b"user@host",
                        b"h\x01", b"[::1", b"a/b"])
FIELDS: Pieces = ([(b"X-Fine", b"v"), (b"X_Underscore", b"1"), (b"Content_Length", b"5"),
                   (b"Transfer_Encoding", b"chunked"), (b"Host_", b"evil"), (b"X-Trail", b"v \t "),
                   (b"X-Lead", b"   v"), (b"X-Long", b"a" * 9000), (b"Connection", b"close"),
                   (b"Connection", b"X-Fine, keep-alive"), (b"Expect", b"100-continue"), (b"X-Request-ID", b"mine"),
                   (b"X-Forwarded-For", b"1.2.3.4"), (b"Via", b"1.0 other"), (b"X-Obs", b"\x80\xff"),
                   (b"X-Empty", b""), (b"Content-Type", b"text/plain"), (b"X-Inner", b"a  \t b")],
                  [(b"X-Huge", b"b" * 33000), (b"X Space", b"1"), (b"", b"nameless"), (b"\xc3\xa9", b"1"),
                   (b"X@", b"1"), (b"X-Ctl", b"a\x01b"), (b"X-Nul", b"a\x00b"), (b"X-Del", b"a\x7fb"),
                   (b"X-CR", b"a\rb")])
# Upgrades other than WebSocket (the test server's ProxyApp serves no WebSocket scopes; rusta.asgi routes them).
UPGRADES = [[(b"Upgrade", b"h2c"), (b"Connection", b"Upgrade")],
            [(b"Upgrade", b"foo/2"), (b"Connection", b"close, upgrade")], [(b"Upgrade", b"h2c")],
            [(b"Connection", b"Upgrade")]]
FOLD = b"X-Fold: a\r\n b"  # obs-fold: a line that continues the one before
ENDINGS: Pieces = ([b"\r\n"], [b"\n", b"\r", b"\r\r\n"])
# Content-Length values and Transfer-Encoding lists (codings, possibly over several fields).
BAD_LENGTHS = [b"+%d", b"-1", b" %d", b"%d,%d", b"0x%d", b"99999999999999999999", b"", b"%d ", b"%d_0", b"%d.0"]
BAD_CODINGS = [[b"gzip, chunked"], [b"chunked, gzip"], [b"chunked, chunked"], [b"Chunked"], [b"CHUNKED"],
               [b"chunked "], [b"identity"], [b"gzip"], [b"xchunked"], [b"gzip", b"chunked"], [b"chunked", b"chunked"],
               [b"chunked;q=1"], [b""]]
BAD_CHUNKS = [b"zz\r\nab\r\n0\r\n\r\n", b"3 \r\nabc\r\n0\r\n\r\n", b"ffffffffffffffffff\r\na\r\n0\r\n\r\n",
              b"3\r\nabc\r\n0\r\n", b"-3\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n",
              b"3\r\nabc\r\n0\r\nHost: evil\r\nX-Trailer: 1\r\nContent-Length: 9\r\n\r\n",
              b"3;ext=\"q\"\r\nabc\r\n0\r\n\r\n", b"3\nabc\n0\n\n", b"3\r\nabc0\r\n\r\n"]
SMUGGLED = b"GET /static HTTP/1.1\r\nHost: gateway.test\r\nX-Smuggled: 1\r\n\r\n"
PARTS = ["method", "gap", "target", "version", "host", "fields", "endings", "framing", "fold", "upgrade"]

# 5xx the gateway may answer, by type (protocols/errors.py and the listener's refusals); never 500.
DOCUMENTED_5XX = {
    (501, "method_not_implemented"), (501, "transfer_coding_not_implemented"), (501, "protocol_not_supported"),
    (502, "upstream_connect_refused"), (502, "upstream_reset"), (502, "upstream_invalid_response"),
    (503, "no_backend"), (504, "upstream_timeout"), (504, "upstream_connect_timeout"),
    (505, "http_version_not_supported"),
}
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9]{2}) [\t\x20-\x7e\x80-\xff]*")
_FIELD = re.compile(rb"(" + TOKEN + rb"):[ \t]*((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*")
_REQUEST_LINE = re.compile(rb"(" + TOKEN + rb") (/[\x21-\x7e]*) HTTP/1\.1")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})|%00")


def piece(pieces: Pieces, hostile: bool) -> st.SearchStrategy[Any]:
    return st.sampled_from(pieces[0] + pieces[1] if hostile else pieces[0])


@st.composite
def a_target(draw: st.DrawFn, hostile: bool) -> bytes:
    segment = b"".join(draw(st.lists(st.sampled_from(SEGMENT_PIECES), min_size=1, max_size=4)))
    path = bytearray(draw(st.sampled_from(ROUTED)).replace(b"%s", segment))
    path += draw(st.sampled_from([b"", b"", b"?x=1", b"?x=1&y=%20;z"]))
    if hostile:
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(path)))
            path[at:at] = draw(st.sampled_from(HOSTILE_PIECES))
    forms = [st.just(bytes(path))] * 4 + [st.builds(lambda scheme, authority: scheme + authority + path,
                                                    piece(SCHEMES, hostile), piece(AUTHORITIES, hostile))]
    if hostile:
        forms += [st.sampled_from([b"*", b"", b"api.example.com:443", b"static"]), st.binary(max_size=16)]
    return draw(st.one_of(forms))


@st.composite
def a_framing(draw: st.DrawFn, hostile: bool,
              version: bytes | None) -> tuple[list[tuple[bytes, bytes]], bytes, bytes | None]:
    """Framing fields, the bytes that follow the head (which, when hostile, need not agree), and the body they
    frame (None when hostile: then the gateway must refuse or pick one reading, and no body is expected)."""
    body = draw(st.binary(max_size=40))
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    length = b"%d" % len(body)
    kinds = ["none", "length"] + (["chunked"] if version != b"HTTP/1.0" or hostile else [])
    if hostile:
        kinds += ["lengths", "bad length", "bad coding", "chunked+length", "bad chunks"] * 2
    kind = draw(st.sampled_from(kinds))
    te = [(b"Transfer-Encoding", b"chunked")]
    if kind == "none":
        return [], b"", b""
    if kind == "length":
        return [(b"Content-Length", length)], body, body
    if kind == "chunked":
        return te, chunked, body
    if kind == "lengths":
        other = draw(st.sampled_from([length, b"%d" % (len(body) + 1)]))
        return [(b"Content-Length", length), (b"Content-Length", other)], body, None
    if kind == "bad length":
        return [(b"Content-Length", draw(st.sampled_from(BAD_LENGTHS)).replace(b"%d", length))], body, None
    if kind == "bad coding":
        return [(b"Transfer-Encoding", coding) for coding in draw(st.sampled_from(BAD_CODINGS))], chunked, None
    if kind == "chunked+length":
        return [(b"Content-Length", length), *te], chunked, None
    return te, draw(st.sampled_from(BAD_CHUNKS)), None


@dataclass(frozen=True)
class Fuzzed:
    """One generated request: the bytes sent, whether the answer to it has no content, how many requests they are,
    and the body they frame (None: the framing is hostile)."""

    wire: bytes
    head_request: bool
    requests: int
    body: bytes | None = None


@st.composite
def a_request(draw: st.DrawFn) -> Fuzzed:
    hostile = draw(st.sets(st.sampled_from(PARTS), max_size=3))
    method = draw(piece(METHODS, "method" in hostile))
    gap = draw(piece(GAPS, "gap" in hostile))
    version = draw(piece(VERSIONS, "version" in hostile))
    line = method + gap + draw(a_target("target" in hostile)) + (gap + version if version is not None else b"")
    hosts = draw(st.integers(0, 2)) if "host" in hostile else 1
    fields = [(draw(piece(HOST_NAMES, "host" in hostile)), draw(piece(HOST_VALUES, "host" in hostile)))
              for _ in range(hosts)]
    fields += draw(st.lists(piece(FIELDS, "fields" in hostile), max_size=4))
    if "upgrade" in hostile:
        fields += draw(st.sampled_from(UPGRADES))
    framing, after_head, body = draw(a_framing("framing" in hostile, version))
    lines = [line, *(name + b": " + value for name, value in draw(st.permutations([*fields, *framing])))]
    if "fold" in hostile:
        lines.insert(draw(st.integers(1, len(lines))), FOLD)
    head = b"".join(text + draw(piece(ENDINGS, "endings" in hostile)) for text in lines) + b"\r\n"
    smuggle = draw(st.integers(0, 4)) == 0
    return Fuzzed(head + after_head + (SMUGGLED if smuggle else b""), method == b"HEAD", 2 if smuggle else 1, body)


@dataclass
class Answer:
    status: int
    fields: list[tuple[bytes, bytes]]
    body: bytes

    def field(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.fields if key.lower() == name]


class Malformed(AssertionError):
    """The gateway's answer is not well-formed HTTP/1.1."""


def parse_answers(data: bytes, head_request: bool) -> tuple[list[Answer], bytes]:
    """The complete final answers at the start of `data` (strictly: anything off raises Malformed), and the rest.

    The first answer is to the fuzzed request (no content when it was HEAD); any later one to the smuggled GET."""
    answers: list[Answer] = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return answers, data
        lines = data[:end].split(b"\r\n")
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            raise Malformed(f"bad status line {lines[0]!r}")
        fields = []
        for line in lines[1:]:
            field = _FIELD.fullmatch(line)
            if field is None:
                raise Malformed(f"bad header line {line!r}")
            fields.append((field[1].lower(), field[2]))
        answer = Answer(int(status_line[1]), fields, b"")
        lengths, codings = answer.field(b"content-length"), answer.field(b"transfer-encoding")
        if len(lengths) > 1 or (lengths and codings) or (lengths and not lengths[0].isdigit()):
            raise Malformed(f"bad framing {fields!r}")
        rest = data[end + 4:]
        if answer.status < 200 or answer.status in (204, 304) or (head_request and not answers):
            size = 0
        elif codings:
            if codings != [b"chunked"]:
                raise Malformed(f"bad transfer coding {codings!r}")
            found = _dechunk(rest)
            if found is None:
                return answers, data
            answer.body, size = found
        elif lengths:
            size = int(lengths[0])
            if len(rest) < size:
                return answers, data
            answer.body = rest[:size]
        else:
            raise Malformed(f"an answer with content but no framing: {fields!r}")
        data = rest[size:]
        if answer.status >= 200:
            answers.append(answer)


def _dechunk(data: bytes) -> tuple[bytes, int] | None:
    body, at = b"", 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        if not re.fullmatch(rb"[0-9A-Fa-f]+", data[at:line_end]):
            raise Malformed(f"bad chunk size line {data[at:line_end]!r}")
        size, at = int(data[at:line_end], 16), line_end + 2
        if size == 0:
            return (body, at + 2) if data[at:at + 2] == b"\r\n" else None
        if len(data) < at + size + 2:
            return None
        body, at = body + data[at:at + size], at + size + 2


def converse(port: int, fuzzed: Fuzzed) -> tuple[list[Answer], bytes, bool]:
    """Send the request on a fresh connection; read until the server closes, or the answers are all there and
    nothing more comes, or 2 s have passed (the listener's timeouts answer an incomplete request within 1 s).
    Returns the answers, the bytes after them, and whether the server closed."""
    with RawConnection(port) as conn:
        conn.send(fuzzed.wire)
        deadline = time.monotonic() + 2.0
        while not conn.closed and time.monotonic() < deadline:
            answers, _ = parse_answers(conn.received, fuzzed.head_request)
            if len(answers) >= fuzzed.requests and not conn.readable(0.02):
                break
            conn.pump(0.05)
        answers, rest = parse_answers(conn.received, fuzzed.head_request)
        return answers, rest, conn.closed


def assert_canonical(head: bytes) -> None:
    """A head the gateway sent upstream: RFC 9112 origin-form, one Host, token names, trimmed values, one framing."""
    assert head.endswith(b"\r\n\r\n"), head
    lines = head[:-4].split(b"\r\n")
    assert not any(b"\n" in line or b"\r" in line for line in lines), f"bare CR or LF in {head!r}"
    request_line = _REQUEST_LINE.fullmatch(lines[0])
    assert request_line is not None, f"not METHOD SP origin-form SP HTTP/1.1: {lines[0]!r}"
    target = request_line[2]
    assert b"\\" not in target and b"#" not in target and _BAD_ESCAPE.search(target) is None, target
    names = []
    for line in lines[1:]:
        assert line[:1] not in (b" ", b"\t"), f"obs-fold in {head!r}"
        name, colon, value = line.partition(b":")
        assert colon and re.fullmatch(TOKEN, name) and b"_" not in name, f"bad field name in {line!r}"
        assert value[:1] == b" " and value[1:] == value[1:].strip(b" \t"), f"untrimmed value in {line!r}"
        names.append(name.lower())
        if name.lower() == b"transfer-encoding":
            assert value[1:] == b"chunked", line
    assert names.count(b"host") == 1, head
    assert names.count(b"content-length") + names.count(b"transfer-encoding") <= 1, head


def check_answer(answer: Answer, content: bytes) -> None:
    """A gateway error (any answer of 400 or more: the back end only ever answers 200) is a documented JSON one."""
    assert answer.status != 500
    if answer.status < 400:
        return
    assert answer.field(b"content-type") == [b"application/json"], answer
    if content:
        error = json.loads(content)
        assert sorted(error) == ["error", "request_id", "type"], error
        assert error["type"] != "gateway_error", "the gateway failed internally"
        assert answer.status < 500 or (answer.status, error["type"]) in DOCUMENTED_5XX, error


@pytest.fixture(scope="module")
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    methods = ("GET", "POST", "PUT", "DELETE", "PATCH")
    routes = [route("static", "/static", upstream.port, methods=methods),
              route("items", "/items/{id}", upstream.port, methods=methods),
              route("host-bound", "/h/{x}", upstream.port, methods=methods, match_host="api.example.com"),
              route("wildcard", "/w", upstream.port, methods=methods, match_host="*.example.org")]
    # Short timeouts: a request the grammar left incomplete is answered 408 instead of holding the example.
    with ProxyServer(routes, listener=ListenerLimits(header_timeout=0.5, body_timeout=0.5)) as server:
        yield server


@FUZZ
@given(fuzzed=a_request())
def test_hostile_request_heads_get_well_formed_answers_and_only_canonical_heads_go_upstream(
        proxy, upstream, errors, fuzzed):
    upstream.requests.clear()
    errors.messages.clear()
    note(f"client bytes: {fuzzed.wire!r}")
    answers, rest, closed = converse(proxy.port, fuzzed)
    note(f"answers: {answers!r}; then {rest!r} (closed: {closed})")
    seen = list(upstream.requests)
    note(f"upstream heads: {[request.head for request in seen]!r}")
    event(f"answers {[_kind(answer) for answer in answers]}, {len(seen)} forwarded")  # --hypothesis-show-statistics
    assert rest == b"", "an incomplete or surplus answer"
    assert answers or not closed, "closed without an answer"
    for index, answer in enumerate(answers):
        # A HEAD answer has no content; a refused one's JSON body is what trails it (checked all the same).
        bodiless = fuzzed.head_request and index == 0
        check_answer(answer, (rest if len(answers) == 1 else b"") if bodiless else answer.body)
    assert len(seen) <= fuzzed.requests, "the back end received more requests than the client sent"
    assert len(seen) <= len(answers), "the back end received a request the client got no answer to"
    for request in seen:
        assert_canonical(request.head)
        if fuzzed.body is not None and not request.header("x-smuggled"):
            assert bytes(request.body) == fuzzed.body, "the back end received another body than the client sent"
    assert errors.messages == []


def _kind(answer: Answer) -> str:
    try:
        return f"{answer.status} {json.loads(answer.body)['type']}"
    except (ValueError, KeyError, TypeError):
        return str(answer.status)


def test_a_refused_head_request_gets_an_answer_without_content(proxy):
    fuzzed = Fuzzed(b"HEAD /static HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", True, 1)
    answers, rest, closed = converse(proxy.port, fuzzed)
    assert [answer.status for answer in answers] == [400]
    assert closed and rest == b""


UPGRADE = b"POST /static HTTP/1.1\r\nHost: gateway.test\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"


@pytest.mark.parametrize("framing", [b"Content-Length: 3\r\n\r\nabc",
                                     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
                         ids=["content-length", "chunked"])
def test_a_body_sent_with_an_ignored_upgrade_is_refused(upstream, framing):
    """httptools stops reading at an Upgrade head (not WebSocket): its body would be left behind, so it is 400."""
    upstream.requests.clear()
    with ProxyServer([route("static", "/static", upstream.port, methods=("POST",), read_timeout=1.0)]) as proxy:
        answers, _, closed = converse(proxy.port, Fuzzed(UPGRADE + framing, False, 1, b"abc"))
    assert [answer.status for answer in answers] == [400]
    assert json.loads(answers[0].body)["type"] == "unsupported_upgrade"
    assert closed and upstream.requests == []


def test_an_ignored_upgrade_without_a_body_is_served_and_the_connection_closed(upstream):
    upstream.requests.clear()
    with ProxyServer([route("static", "/static", upstream.port, methods=("GET",))]) as proxy:
        answers, _, closed = converse(proxy.port, Fuzzed(UPGRADE.replace(b"POST", b"GET") + b"\r\n", False, 1))
    assert [answer.status for answer in answers] == [200]
    assert closed and len(upstream.requests) == 1
    assert not upstream.requests[0].header("upgrade")


# Route matching in-process: a table of a few hundred routes, and paths, hosts and methods from a hostile mix.
_BACKEND = (BackendSpec(id=1, scheme="http", host="127.0.0.1", port=9),)
_WORDS = ["api", "v1", "v2", "users", "me", "posts", "files", "a", "b", "c", "static", "x", "health", "admin"]
_HOSTS = ["", "api.example.com", "*.example.org", "*.example.com"]
_VERBS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def _a_table(count: int = 300, seed: int = 7) -> RouteTable:
    rng = random.Random(seed)
    specs, params = [], iter(range(1 << 30))
    for index in range(count):
        parts = [f"{{p{next(params)}}}" if rng.random() < 0.35 else rng.choice(_WORDS)
                 for _ in range(rng.randint(0, 4))]
        methods = tuple(rng.sample(_VERBS, rng.randint(1, 3)))
        specs.append(RouteSpec(id=index + 1, name=f"r{index}", external_path="/" + "/".join(parts), methods=methods,
                               backends=_BACKEND, match_host=rng.choice(_HOSTS), priority=rng.randint(0, 3),
                               order=index))
    return RouteTable(specs, version=1)


TABLE = _a_table()
SEGMENTS = st.one_of(st.sampled_from([*_WORDS, "", ".", "..", "%2e", "%2E%2e", "%2f", "\u00e9", "{id}", "*", ";x",
                                      "a b", "\x00", "\\"]),
                     st.text(max_size=6))
PATHS = st.one_of(
    st.builds(lambda parts, slash: "/" + "/".join(parts) + slash, st.lists(SEGMENTS, max_size=6),
              st.sampled_from(["", "", "/", "//"])),
    st.text(max_size=20),
)


def resolve(table: RouteTable, method: str, host: str, path: str) -> CompiledRoute:
    """Match as ProxyApp does (dot segments removed, Host without port), raising the documented gateway errors."""
    clean = normalize_path(path)
    match = table.match(method, host_key(host.encode("utf-8", "surrogatepass")), clean)
    if match.route is None:
        if match.allow:
            raise MethodNotAllowed(method, clean, match.allow)
        raise NoRoute(method, clean)
    return match.route


def brute_force(table: RouteTable, method: str, host: str, path: str) -> tuple[CompiledRoute | None, set[str]]:
    """The winner by rank among every route that matches, and the methods allowed on the path (the oracle)."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segments = path[1:].split("/") if path != "/" else []
    allowed: set[str] = set()
    for candidate in table.routes:  # in rank order
        if len(candidate.segments) != len(segments) or not candidate.accepts_host(host):
            continue
        if all(s.text == text if not s.is_param else bool(text) for s, text in zip(candidate.segments, segments,
                                                                                    strict=True)):
            if method in candidate.methods:
                return candidate, allowed
            allowed |= candidate.methods
    return None, allowed


@MATCHING
@given(method=st.one_of(st.sampled_from([*_VERBS, "HEAD", "TRACE"]), st.text(max_size=8)),
       host=st.one_of(st.sampled_from(["api.example.com", "eu.example.org", "example.org", "API.EXAMPLE.COM:8080",
                                       "[::1]:80", ""]), st.text(max_size=12)),
       path=PATHS)
def test_route_matching_only_ever_raises_the_documented_errors_and_agrees_with_brute_force(method, host, path):
    key, clean = host_key(host.encode("utf-8", "surrogatepass")), normalize_path(path)
    allow: set[str] | None = None
    try:
        found: CompiledRoute | None = resolve(TABLE, method, host, path)
    except MethodNotAllowed as refusal:
        found, allow = None, set(refusal.allow.split(", "))
        assert method not in allow
    except NoRoute:
        found, allow = None, set()
    if found is not None:
        assert method in found.methods and found.accepts_host(key)
        found.upstream_path(TABLE.match(method, key, clean).params, clean)
    if clean.startswith("/"):
        expected, allowed = brute_force(TABLE, method, key, clean)
        assert found is expected
        assert allow is not None or expected is not None
        assert expected is not None or allow == allowed
