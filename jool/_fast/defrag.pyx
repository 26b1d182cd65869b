"""IPv6 reassembly in front of the stateful core (spec/behaviour.md §11: RFC 6146
needs the transport header of every packet, so Jool sees whole packets only).

IPv4 fragments are reassembled by the kernel before the worker's ring sees them
(PACKET_FANOUT_FLAG_DEFRAG); IPv6 ones arrive one by one. Each worker keeps a small
table of datagrams in reassembly. The fanout hash of an IPv6 fragment covers its
addresses and flow label, so all pieces of a datagram reach the same worker.

Rules (RFC 8200 §4.5, RFC 5722): a datagram is keyed by source, destination and
fragment identification; any overlap discards it; it may hold at most 65535 bytes
of payload; it is forgotten 60 s after its first fragment; when every slot is
busy the oldest one gives way. Only a fragment header right after the IPv6 header
is supported (what every sender emits); others go to the core as they are.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.string cimport memcpy, memset, memcmp

cnp.import_array()

cdef enum:
    MAX_PAYLOAD = 65535
    UNITS = 8192                    # 8-byte units of the largest payload
    BITMAP_BYTES = 1024             # one bit per unit
    REASSEMBLY_TIMEOUT = 60000      # RFC 8200 §4.5: 60 seconds


cdef packed struct Slot:
    uint8_t used
    uint8_t nh                      # the fragmentable part's first header
    uint8_t have_first
    uint8_t reserved
    uint32_t ident
    uint32_t started
    uint32_t total                  # payload length, known once the last piece came
    uint32_t have                   # bytes received
    uint8_t src[16]
    uint8_t dst[16]
    uint8_t header[40]
    uint8_t bitmap[BITMAP_BYTES]


cdef class Reassembler:
    """A worker's IPv6 reassembly table; add() consumes fragments."""

    def __init__(self, uint32_t slots=32):
        cdef cnp.uint8_t[::1] v
        self.nslots = slots
        self._slots = np.zeros(slots * sizeof(Slot), dtype=np.uint8)
        self._data = np.zeros(<uint64_t>slots * MAX_PAYLOAD, dtype=np.uint8)
        self._out = np.zeros(40 + MAX_PAYLOAD, dtype=np.uint8)
        v = self._slots
        self.slots = <Slot*>&v[0]
        v = self._data
        self.data = &v[0]
        v = self._out
        self.out = &v[0]
        self.completed = 0
        self.discarded = 0
        self.evicted = 0

    @property
    def stats(self):
        return {"completed": self.completed, "discarded": self.discarded,
                "evicted": self.evicted}

    cdef Slot* find(self, const uint8_t* p, uint32_t ident, uint32_t now) noexcept nogil:
        cdef uint32_t i, oldest = 0
        cdef Slot* s
        cdef Slot* free = NULL
        for i in range(self.nslots):
            s = &self.slots[i]
            if s.used and <int32_t>(now - s.started) >= REASSEMBLY_TIMEOUT:
                s.used = 0                  # timed out: forget it
                self.discarded += 1
            if s.used:
                if s.ident == ident and memcmp(s.src, p + 8, 16) == 0 \
                        and memcmp(s.dst, p + 24, 16) == 0:
                    return s
                if <int32_t>(s.started - self.slots[oldest].started) < 0 or not self.slots[oldest].used:
                    oldest = i
            elif free == NULL:
                free = s
        if free == NULL:
            free = &self.slots[oldest]      # every slot busy: the oldest gives way
            self.evicted += 1
        memset(free, 0, sizeof(Slot))
        free.used = 1
        free.ident = ident
        free.started = now
        memcpy(free.src, p + 8, 16)
        memcpy(free.dst, p + 24, 16)
        return free

    cdef int add(self, const uint8_t* p, uint32_t n, uint32_t now,
                 const uint8_t** out, uint32_t* out_len) noexcept nogil:
        """1 with the whole packet in *out when p completes a datagram; 0 when p
        was kept (or discarded); -1 when p is not something this handles."""
        cdef uint32_t plen, end, fo, offset, length, first_unit, last_unit, u
        cdef uint8_t mf
        cdef Slot* s
        cdef uint8_t* data
        if n < 48 or (p[0] >> 4) != 6 or p[6] != 44:
            return -1
        plen = (<uint32_t>p[4] << 8) | p[5]
        end = 40 + plen
        if plen < 8 or end > n:
            return -1                       # lying lengths: the core counts them
        fo = (<uint32_t>p[42] << 8) | p[43]
        offset = (fo & 0xfff8)
        mf = fo & 1
        length = end - 48
        if offset == 0 and not mf:
            return -1                       # an atomic fragment is whole already
        s = self.find(p, (<uint32_t>p[44] << 24) | (<uint32_t>p[45] << 16)
                      | (<uint32_t>p[46] << 8) | p[47], now)
        data = self.data + <uint64_t>(s - self.slots) * MAX_PAYLOAD
        if offset + length > MAX_PAYLOAD or (mf and length % 8 != 0) \
                or (not mf and s.total and s.total != offset + length) \
                or (s.total and offset + length > s.total):
            s.used = 0
            self.discarded += 1
            return 0
        first_unit = offset // 8
        last_unit = (offset + length + 7) // 8
        for u in range(first_unit, last_unit):
            if s.bitmap[u >> 3] & (1 << (u & 7)):
                s.used = 0                  # RFC 5722: overlap, drop it all
                self.discarded += 1
                return 0
        for u in range(first_unit, last_unit):
            s.bitmap[u >> 3] |= 1 << (u & 7)
        memcpy(data + offset, p + 48, length)
        s.have += length
        if not mf:
            s.total = offset + length
        if offset == 0:
            memcpy(s.header, p, 40)
            s.nh = p[40]
            s.have_first = 1
        if s.total == 0 or s.have != s.total or not s.have_first:
            return 0
        memcpy(self.out, s.header, 40)
        self.out[4] = s.total >> 8
        self.out[5] = s.total & 0xff
        self.out[6] = s.nh
        memcpy(self.out + 40, data, s.total)
        out[0] = self.out
        out_len[0] = 40 + s.total
        s.used = 0
        self.completed += 1
        return 1

    def feed(self, packet, uint32_t now=0):
        """add() for tests and tools: the whole packet (bytes) when packet completes
        a datagram, b"" when it was kept or discarded, None when not a fragment."""
        cdef bytes data = bytes(packet)
        cdef const uint8_t* whole
        cdef uint32_t whole_len
        cdef int rc = self.add(<const uint8_t*>data, len(data), now, &whole, &whole_len)
        if rc == 1:
            return bytes(whole[:whole_len])
        return b"" if rc == 0 else None
