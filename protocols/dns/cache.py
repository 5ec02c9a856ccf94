"""The forwarder's answer cache: bounded in entries (LRU), TTLs from the answer, negative caching (RFC 2308)."""
from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from protocols.dns import wire
from protocols.dns.wire import Query

CacheKey = tuple[bytes, int, int, bool]  # qname lower-cased, qtype, qclass, DO bit
_ANY = dns.rdatatype.ANY
_FLAGS = struct.Struct(">H")
_COUNTS = struct.Struct(">HHHH")


class CacheEntry:
    """One answer ready to serve: wire bytes without OPT, where its TTLs sit, and how long it lives.

    `ttl` is the entry's lifetime after the floor and caps; each record is served with min(its TTL, ttl) less
    the whole seconds spent in cache. The records part is rendered once per second of age, so a hit costs a
    header, the client's question and one concatenation.
    """

    __slots__ = ("wire", "ttl_fields", "ttl", "stored_at", "negative", "_flags", "_counts", "_question_end",
                 "_smallest", "_age", "_records")

    def __init__(self, stored: bytes, ttl_fields: tuple[tuple[int, int], ...], ttl: int, stored_at: float,
                 negative: bool) -> None:
        self.wire = stored
        self.ttl_fields = ttl_fields
        self.ttl = ttl
        self.stored_at = stored_at
        self.negative = negative
        self._flags = _FLAGS.unpack_from(stored, 2)[0] & ~(wire.RD | wire.CD)
        self._counts = _COUNTS.unpack_from(stored, 4)
        self._question_end = wire.question_end(stored)
        self._smallest = min((min(t, ttl) for _, t in ttl_fields), default=ttl)
        self._age = -1
        self._records = b""

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl

    def render(self, query: Query, now: float, payload: int) -> tuple[bytes, int]:
        """The answer for this client (its id, RD and CD bits, its question as sent, an OPT when it sent one)
        and its smallest TTL. The question is the client's: its key equals ours, so only letter case differs."""
        age = int(now - self.stored_at)
        if age != self._age:
            out = bytearray(self.wire)
            wire.patch_ttls(out, self.ttl_fields, self.ttl, age)
            self._records = bytes(out[self._question_end:])
            self._age = age
        qdcount, ancount, nscount, arcount = self._counts
        flags = self._flags | (query.flags & (wire.RD | wire.CD))
        if query.edns_payload is None:
            head = wire.HEADER.pack(query.id, flags, qdcount, ancount, nscount, arcount)
            return head + query.question + self._records, max(0, self._smallest - age)
        head = wire.HEADER.pack(query.id, flags, qdcount, ancount, nscount, arcount + 1)
        return (head + query.question + self._records + wire.opt_record(payload, query.do),
                max(0, self._smallest - age))


class DnsCache:
    """Answers by (qname, qtype, qclass, DO), least recently used evicted first once `max_entries` are held.

    `clock` is an attribute so that tests move time instead of sleeping. Expired entries are dropped when looked
    up, and all at once by `cleanup()`.
    """

    def __init__(self, max_entries: int = 10_000, *, min_ttl: int = 0, max_ttl: int = 3600,
                 max_negative_ttl: int = 900, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._entries: OrderedDict[CacheKey, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            if self.clock() < entry.expires_at:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: CacheKey, entry: CacheEntry) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def cleanup(self) -> int:
        """Drop every expired entry; returns how many went."""
        now = self.clock()
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            del self._entries[key]
        return len(expired)

    def clear(self) -> None:
        self._entries.clear()

    def stats(self) -> dict[str, int | float]:
        looked_up = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "entries": len(self._entries),
            "evictions": self.evictions,
            "max_entries": self.max_entries,
            "hit_rate": round(self.hits / looked_up, 4) if looked_up else 0.0,
        }

    def entry_for(self, query: Query, answer: bytes) -> CacheEntry | None:
        """The cache entry for an upstream answer, or None when it must not be cached.

        Cached: NOERROR with the asked type (or anything, for ANY) for the smallest answer TTL; NXDOMAIN and
        NODATA for min(SOA TTL, SOA MINIMUM) and the answer TTLs (RFC 2308 section 5), only with an SOA in the
        authority section. Not cached: other rcodes, truncated or signed (TSIG) answers, EDNS versions we did
        not ask for. The stored copy has no OPT record: each client gets its own on the way out.
        """
        try:
            message = dns.message.from_wire(answer)
        except dns.exception.DNSException:
            return None
        rcode = message.rcode()
        if (rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or message.flags & dns.flags.TC
                or message.had_tsig or query.edns_version):
            return None
        answer_ttls = [rrset.ttl for rrset in message.answer]
        positive = rcode == dns.rcode.NOERROR and any(
            rrset.rdtype == query.qtype or query.qtype == _ANY for rrset in message.answer
        )
        if positive:
            ttl = min(max(min(answer_ttls), self.min_ttl), self.max_ttl)
        else:
            soa = next((rrset for rrset in message.authority if rrset.rdtype == dns.rdatatype.SOA), None)
            if soa is None or not len(soa):
                return None
            negative_ttl = min(soa.ttl, soa[0].minimum, *answer_ttls)
            ttl = min(max(negative_ttl, self.min_ttl), self.max_negative_ttl, self.max_ttl)
        if ttl <= 0:
            return None
        message.id = 0
        message.use_edns(False)
        try:
            stored = message.to_wire(max_size=wire.MAX_MESSAGE)
        except dns.exception.DNSException:
            return None
        if wire.question_end(stored) != wire.HEADER.size + len(query.question):
            return None  # a question we cannot swap for the client's; never seen from dnspython's renderer
        return CacheEntry(stored, wire.ttl_fields(stored), ttl, self.clock(), not positive)
