"""The few DNS wire-format reads and writes the hot path needs, done on bytes: header, question, OPT, TTLs.

dnspython parses every upstream answer once (see cache.py); a query, though, is looked at on every packet,
and a full `dns.message.from_wire` costs about 50 µs where these reads cost a few. Every read is bounds-checked
and every loop is bounded by the packet size, so no input can raise anything but `Unparseable`.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

HEADER = struct.Struct(">HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
RR_FIXED = struct.Struct(">HHIH")  # type, class, ttl, rdlength
_TTL = struct.Struct(">I")
_TYPE_CLASS = struct.Struct(">HH")

QR = 0x8000
OPCODE = 0x7800
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
CD = 0x0010
RCODE = 0x000F

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
TYPE_OPT = 41
DO_BIT = 0x8000  # in the OPT record's TTL field (RFC 3225)
MAX_MESSAGE = 65535
_MAX_POINTERS = 64


class Unparseable(ValueError):
    """A packet that is not a query we can forward. `reply` is the FORMERR/NOTIMP answer due, or None: drop it."""

    def __init__(self, reason: str, reply: bytes | None = None) -> None:
        super().__init__(reason)
        self.reply = reply


class Query(NamedTuple):
    """What the forwarder needs from a client's query, read once (a tuple: built in a fraction of a microsecond).

    `question` is the question section exactly as the client sent it (case included, for 0x20 clients);
    `qname` is the same name lower-cased, as cache key and for matching answers.
    """

    id: int
    flags: int
    qname: bytes
    qtype: int
    qclass: int
    question: bytes
    edns_payload: int | None  # None: the client sent no OPT record
    edns_version: int
    do: bool

    @property
    def key(self) -> tuple[bytes, int, int, bool]:
        return (self.qname, self.qtype, self.qclass, self.do)

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE) >> 11


def skip_name(wire: bytes, offset: int) -> int:
    """The offset just past the (possibly compressed) name at `offset`."""
    size = len(wire)
    while offset < size:
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 2 > size:
                break
            return offset + 2
        if length & 0xC0:
            raise Unparseable("unknown label type")
        offset += 1 + length
    raise Unparseable("name runs past the end of the message")


def read_name(wire: bytes, offset: int) -> tuple[bytes, int]:
    """The name at `offset` as lower-cased uncompressed wire bytes, and the offset just past it in the message.

    Pointers must point backwards, at most _MAX_POINTERS of them, so a pointer loop cannot hang the reader.
    bytes.lower() only touches A-Z, which is DNS case-insensitivity (RFC 4343); length bytes are <= 63.
    """
    size = len(wire)
    labels: list[bytes] = []
    end = -1
    total = 1
    for _ in range(_MAX_POINTERS):
        while True:
            if offset >= size:
                raise Unparseable("name runs past the end of the message")
            length = wire[offset]
            if length == 0:
                if end < 0:
                    end = offset + 1
                return b"".join(labels).lower() + b"\x00", end
            if length & 0xC0 == 0xC0:
                if offset + 2 > size:
                    raise Unparseable("truncated compression pointer")
                target = ((length & 0x3F) << 8) | wire[offset + 1]
                if target >= offset:
                    raise Unparseable("forward compression pointer")
                if end < 0:
                    end = offset + 2
                offset = target
                break
            if length & 0xC0:
                raise Unparseable("unknown label type")
            total += 1 + length
            if total > 255 or offset + 1 + length > size:
                raise Unparseable("name too long")
            labels.append(wire[offset:offset + 1 + length])
            offset += 1 + length
    raise Unparseable("too many compression pointers")


def header_reply(wire: bytes, rcode: int) -> bytes:
    """A bare answer to the query whose header starts `wire`: same id, opcode and RD, the given rcode."""
    qid, flags = struct.unpack_from(">HH", wire)
    return HEADER.pack(qid, QR | (flags & (OPCODE | RD)) | rcode, 0, 0, 0, 0)


def parse_query(wire: bytes) -> Query:
    """Read a client's query, or raise Unparseable (with the FORMERR or NOTIMP reply when one is due).

    Too short for a header, or a response (QR set): dropped, so the forwarder never answers answers. One
    question, no answer records, at most one OPT (owned by the root), nothing after the last record.
    """
    if len(wire) < HEADER.size:
        raise Unparseable("shorter than a DNS header")
    qid, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(wire)
    if flags & QR:
        raise Unparseable("a response, not a query")
    if flags & OPCODE:
        raise Unparseable("opcode not implemented", header_reply(wire, NOTIMP))
    if qdcount != 1 or ancount:
        raise Unparseable("a query needs exactly one question and no answer", header_reply(wire, FORMERR))
    size = len(wire)
    try:
        offset = HEADER.size
        for _ in range(128):  # a name has at most 127 labels
            if offset >= size:
                raise Unparseable("name runs past the end of the message")
            length = wire[offset]
            if length == 0:
                break
            if length > 63:
                raise Unparseable("compressed or unknown label in the question")
            offset += 1 + length
        offset += 1
        if offset - HEADER.size > 255:
            raise Unparseable("name too long")
        if offset + 4 > size:
            raise Unparseable("truncated question")
        qname = wire[HEADER.size:offset].lower()
        qtype, qclass = _TYPE_CLASS.unpack_from(wire, offset)
        offset += 4
        question = wire[HEADER.size:offset]
        if not nscount and not arcount:
            if offset != size:
                raise Unparseable("trailing bytes after the question")
            return Query(qid, flags, qname, qtype, qclass, question, None, 0, False)
        payload: int | None = None
        version = 0
        do = False
        for index in range(nscount + arcount):
            owner = offset
            offset = skip_name(wire, offset)
            if offset + RR_FIXED.size > len(wire):
                raise Unparseable("truncated record")
            rtype, rclass, ttl, rdlength = RR_FIXED.unpack_from(wire, offset)
            offset += RR_FIXED.size + rdlength
            if offset > len(wire):
                raise Unparseable("record data runs past the end")
            if rtype == TYPE_OPT:
                if index < nscount or payload is not None or wire[owner] != 0:
                    raise Unparseable("misplaced or repeated OPT record")
                payload = rclass
                version = (ttl >> 16) & 0xFF
                do = bool(ttl & DO_BIT)
        if offset != len(wire):
            raise Unparseable("trailing bytes after the last record")
    except Unparseable as exc:
        raise Unparseable(str(exc), header_reply(wire, FORMERR)) from None
    return Query(qid, flags, qname, qtype, qclass, question, payload, version, do)


def question_end(wire: bytes) -> int:
    """The offset just past the first question of a message that has one."""
    return skip_name(wire, HEADER.size) + 4


def answers_query(wire: bytes, qid: int, query: Query) -> bool:
    """True when `wire` is a response with id `qid` to `query`'s question (name, type, class; any case)."""
    if len(wire) < HEADER.size:
        return False
    rid, flags, qdcount = struct.unpack_from(">HHH", wire)
    if rid != qid or not flags & QR or qdcount != 1:
        return False
    try:
        name, offset = read_name(wire, HEADER.size)
    except Unparseable:
        return False
    if offset + 4 > len(wire) or name != query.qname:
        return False
    return struct.unpack_from(">HH", wire, offset) == (query.qtype, query.qclass)


def ttl_fields(wire: bytes) -> tuple[tuple[int, int], ...]:
    """(offset, ttl) of every record's TTL after the question section, OPT records excepted (their TTL field
    holds the extended rcode and flags)."""
    qdcount, ancount, nscount, arcount = struct.unpack_from(">HHHH", wire, 4)
    offset = HEADER.size
    for _ in range(qdcount):
        offset = skip_name(wire, offset) + 4
    fields = []
    for _ in range(ancount + nscount + arcount):
        offset = skip_name(wire, offset)
        if offset + RR_FIXED.size > len(wire):
            raise Unparseable("truncated record")
        rtype, _rclass, ttl, rdlength = RR_FIXED.unpack_from(wire, offset)
        if rtype != TYPE_OPT:
            fields.append((offset + 4, ttl))
        offset += RR_FIXED.size + rdlength
    if offset > len(wire):
        raise Unparseable("record data runs past the end")
    return tuple(fields)


def min_ttl(wire: bytes) -> int:
    """The smallest TTL of the message's records (OPT excepted), 0 when it has none or cannot be read."""
    try:
        fields = ttl_fields(wire)
    except (Unparseable, struct.error):
        return 0
    return min((ttl for _, ttl in fields), default=0)


def opt_record(payload: int, do: bool) -> bytes:
    """An OPT pseudo-record: root owner, our UDP payload size, EDNS version 0, DO mirrored, no options."""
    return b"\x00" + RR_FIXED.pack(TYPE_OPT, payload, DO_BIT if do else 0, 0)


def with_client_header(wire: bytes, query: Query) -> bytearray:
    """A copy of an answer carrying the client's id, RD and CD bits, and its question exactly as sent.

    The question is swapped only when it has the same length, which a name equal but for case always has.
    """
    out = bytearray(wire)
    struct.pack_into(">H", out, 0, query.id)
    flags = struct.unpack_from(">H", out, 2)[0] & ~(RD | CD)
    struct.pack_into(">H", out, 2, flags | (query.flags & (RD | CD)))
    end = HEADER.size + len(query.question)
    if end <= len(out) and out[HEADER.size:end - 4].lower() == query.qname and out[end - 4:end] == query.question[-4:]:
        out[HEADER.size:end] = query.question
    return out


def add_opt(out: bytearray, payload: int, do: bool) -> None:
    """Append an OPT record to an answer that has none."""
    arcount = struct.unpack_from(">H", out, 10)[0]
    struct.pack_into(">H", out, 10, arcount + 1)
    out += opt_record(payload, do)


def patch_ttls(out: bytearray, fields: tuple[tuple[int, int], ...], cap: int, age: int) -> None:
    """Write each record's TTL as min(its TTL, cap) less `age`, never below zero."""
    for offset, ttl in fields:
        _TTL.pack_into(out, offset, max(0, min(ttl, cap) - age))


def truncated(answer: bytes, query: Query, payload: int) -> bytes:
    """The answer cut to its header and the question, with TC set: the client is to retry over TCP."""
    flags = struct.unpack_from(">H", answer, 2)[0]
    arcount = 1 if query.edns_payload is not None else 0
    head = HEADER.pack(query.id, (flags & ~(RD | CD)) | (query.flags & (RD | CD)) | TC, 1, 0, 0, arcount)
    tail = opt_record(payload, query.do) if arcount else b""
    return head + query.question + tail


def servfail(query: Query, payload: int) -> bytes:
    """SERVFAIL for a query no resolver answered, with its question (and an OPT when the client sent one)."""
    arcount = 1 if query.edns_payload is not None else 0
    flags = QR | RA | (query.flags & (RD | CD)) | SERVFAIL
    head = HEADER.pack(query.id, flags, 1, 0, 0, arcount)
    return head + query.question + (opt_record(payload, query.do) if arcount else b"")
