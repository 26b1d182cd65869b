"""The packet pipeline, named after RFC 6146 §3's steps, and its batch driver.

    3.4 determine the incoming tuple   -> determine_incoming_tuple_6 / _4
    3.5 filtering and updating         -> (the stateful core: BIB and sessions)
    3.6 compute the outgoing tuple     -> compute_outgoing_tuple_6 / _4
    3.7 translate the packet           -> rfc7915.pyx
    3.8 hairpinning                    -> (the stateful core)

Sans-I/O: `run_batch` takes packets in one contiguous buffer and writes outputs to
an arena, with the GIL released and no Python object per packet. Until the
stateful core exists the outgoing tuple comes from the caller (docs/core-api.md).
"""

from enum import IntEnum
import ipaddress

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from jool._fast.wire cimport rd8, copy, jool_bounds_violations
from jool._fast.counters cimport *
from jool._fast.packet cimport *
from jool._fast.rfc6052 cimport Prefix6, prefix6_contains
from jool._fast.icmp_map cimport icmp6_is_error, icmp4_is_error, ICMP6_PARAM_PROB, \
    ICMP6_DEST_UNREACH, ICMP4_DEST_UNREACH, ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY, \
    ICMP4_ECHO_REQUEST, ICMP4_ECHO_REPLY
from jool._fast.parse cimport parse_ipv6, parse_ipv4
from jool._fast.rfc7915 cimport (translate_6to4, translate_4to6, translate_icmp6_error,
                                 translate_icmp4_error, emit_icmp6_error, emit_icmp4_error)
from jool._fast import parse as _parse_module, rfc7915 as _rfc7915_module
from jool._fast.stats import COUNTER_NAMES, COUNTER_IDS

cnp.import_array()

cdef extern from *:
    """
    #ifndef JOOL_CHECKED
    #define JOOL_CHECKED 0
    #endif
    """
    const int JOOL_CHECKED

BUILD_CHECKED = bool(JOOL_CHECKED)

DEFAULT_MTU_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)
POOL6_LENGTHS = (32, 40, 48, 56, 64, 96)
cdef enum:
    PARTIAL_CSUM = 1
FLAG_PARTIAL_CSUM = PARTIAL_CSUM


class Verdict(IntEnum):
    TRANSLATED = V_TRANSLATED
    DROP = V_DROP
    DROP_ICMP = V_DROP_ICMP
    PASS = V_PASS


class OutKind(IntEnum):
    IPV4 = OUT_IPV4
    IPV6 = OUT_IPV6
    ICMP4_ERROR = OUT_ICMP4_ERROR
    ICMP6_ERROR = OUT_ICMP6_ERROR


def bounds_violations():
    """Packet accesses refused by the checked build, over every kernel module."""
    return (jool_bounds_violations + _parse_module.bounds_violations()
            + _rfc7915_module.bounds_violations())


# ------------------------------------------------------------------ 6 -> 4

cdef int determine_incoming_tuple_6(Ctx* ctx, const uint8_t* p, uint32_t n, IPInfo* info,
                                    bint* is_error, Out* o) noexcept nogil:
    cdef const XlatConfig* cfg = ctx.cfg
    cdef uint8_t addr[16]
    cdef int rc
    is_error[0] = False
    rc = parse_ipv6(p, n, 0, n, False, info)
    if rc:
        return rc
    copy(addr, 16, 0, p, n, 24, 16)
    if not prefix6_contains(&cfg.pool6, addr):
        return pass_up(JSTAT_POOL6_MISMATCH)
    copy(addr, 16, 0, p, n, 8, 16)
    if prefix6_contains(&cfg.pool6, addr):
        return drop(JSTAT_HAIRPIN_LOOP)         # spec §2: would loop through us
    is_error[0] = info.proto == PROTO_ICMPV6 and info.first and icmp6_is_error(info.icmp_type)
    if info.segments_left_at:                   # RFC 7915 §5.1
        if is_error[0]:
            return drop(JSTAT64_SEGMENTS_LEFT)
        rc = emit_icmp6_error(ctx, p, n, info, ICMP6_PARAM_PROB, 0, info.segments_left_at, o)
        return rc if rc else drop_icmp(JSTAT64_SEGMENTS_LEFT)
    if info.ext_after_frag:                     # spec §10
        if is_error[0]:
            return drop(JSTAT64_FRAG_THEN_EXT)
        rc = emit_icmp6_error(ctx, p, n, info, ICMP6_DEST_UNREACH, 1, 0, o)
        return rc if rc else drop_icmp(JSTAT64_FRAG_THEN_EXT)
    if info.proto != PROTO_TCP and info.proto != PROTO_UDP and info.proto != PROTO_ICMPV6:
        return pass_up(JSTAT_UNKNOWN_L4_PROTO)
    if info.proto == PROTO_ICMPV6:
        if info.fragmented:
            return drop(JSTAT64_FRAGMENTED_ICMP)
        if info.icmp_type == ICMP6_ECHO_REQUEST or info.icmp_type == ICMP6_ECHO_REPLY:
            if cfg.drop_icmpv6_info:
                return drop(JSTAT_ICMP6_FILTER)     # spec §8.3
        elif info.icmp_type < ICMP6_DEST_UNREACH or info.icmp_type > ICMP6_PARAM_PROB:
            return pass_up(JSTAT_UNKNOWN_ICMP6_TYPE)
    return 0


cdef inline int compute_outgoing_tuple_6(const Mapping* given, Mapping* out) noexcept nogil:
    out[0] = given[0]
    return 0


cdef int core_6to4(Ctx* ctx, const uint8_t* p, uint32_t n, const Mapping* given,
                   bint partial, Out* o) noexcept nogil:
    cdef IPInfo info
    cdef Mapping m
    cdef bint is_error
    cdef int rc = determine_incoming_tuple_6(ctx, p, n, &info, &is_error, o)
    if rc:
        return rc
    compute_outgoing_tuple_6(given, &m)
    if is_error:
        return translate_icmp6_error(ctx, p, n, &info, &m, o)
    return translate_6to4(ctx, p, n, &info, &m, partial, o)


# ------------------------------------------------------------------ 4 -> 6

cdef int determine_incoming_tuple_4(Ctx* ctx, const uint8_t* p, uint32_t n, IPInfo* info,
                                    bint* is_error, Out* o) noexcept nogil:
    cdef int rc
    cdef uint8_t t
    is_error[0] = False
    rc = parse_ipv4(p, n, 0, n, False, info)
    if rc:
        return rc
    is_error[0] = info.proto == PROTO_ICMP and info.first and icmp4_is_error(info.icmp_type)
    if info.source_route:                       # RFC 7915 §4.1
        if is_error[0]:
            return drop(JSTAT46_SRC_ROUTE)
        rc = emit_icmp4_error(ctx, p, n, info, ICMP4_DEST_UNREACH, 5, 0, o)
        return rc if rc else drop_icmp(JSTAT46_SRC_ROUTE)
    if info.proto != PROTO_TCP and info.proto != PROTO_UDP and info.proto != PROTO_ICMP:
        return pass_up(JSTAT_UNKNOWN_L4_PROTO)
    if info.proto == PROTO_ICMP:
        if info.fragmented:
            return drop(JSTAT46_FRAGMENTED_ICMP)
        # Queries and errors go on (an error RFC 7915 cannot map, such as a
        # redirect, is dropped when translated); any other type is not ours.
        t = info.icmp_type
        if t != ICMP4_ECHO_REQUEST and t != ICMP4_ECHO_REPLY and not is_error[0]:
            return pass_up(JSTAT_UNKNOWN_ICMP4_TYPE)
    return 0


cdef inline int compute_outgoing_tuple_4(const Mapping* given, Mapping* out) noexcept nogil:
    out[0] = given[0]
    return 0


cdef int core_4to6(Ctx* ctx, const uint8_t* p, uint32_t n, const Mapping* given,
                   bint partial, Out* o) noexcept nogil:
    cdef IPInfo info
    cdef Mapping m
    cdef bint is_error
    cdef int rc = determine_incoming_tuple_4(ctx, p, n, &info, &is_error, o)
    if rc:
        return rc
    compute_outgoing_tuple_4(given, &m)
    if is_error:
        return translate_icmp4_error(ctx, p, n, &info, &m, o)
    return translate_4to6(ctx, p, n, &info, &m, partial, o)


# ------------------------------------------------------------------ batch driver

cdef uint32_t run_batch(Ctx* ctx, const uint8_t* inbuf, uint32_t incap,
                        const uint32_t* in_off, const uint32_t* in_len, const uint8_t* in_flags,
                        const uint8_t* map_addr, const uint16_t* map_port, uint32_t count,
                        uint8_t* verdicts, uint16_t* reasons, Out* o) noexcept nogil:
    """Translates count packets; returns how many were processed (fewer only when
    the output arena filled up: the caller drains it and calls again for the rest)."""
    cdef const XlatConfig* cfg = ctx.cfg
    cdef uint64_t* counters = ctx.counters
    cdef uint32_t i, used0, n0
    cdef const uint8_t* p
    cdef uint32_t n
    cdef uint8_t version, verdict
    cdef int rc
    cdef Mapping given
    for i in range(count):
        n = in_len[i]
        if <uint64_t>in_off[i] + n > incap:
            verdicts[i] = V_DROP
            reasons[i] = JSTAT_L3HDR_OFFSET
            counters[JSTAT_L3HDR_OFFSET] += 1
            continue
        p = inbuf + in_off[i]
        version = (rd8(p, n, 0) >> 4) if n > 0 else 0
        o.input_index = i
        used0 = o.used
        n0 = o.n
        memcpy(given.addr, map_addr + 16 * <uint64_t>i, 16)
        given.port = map_port[i]
        if version == 6:
            if not cfg.enabled:
                rc = pass_up(JSTAT_XLATOR_DISABLED)
            elif not cfg.pool6_set:
                rc = pass_up(JSTAT_POOL6_UNSET)
            else:
                rc = core_6to4(ctx, p, n, &given, (in_flags[i] & PARTIAL_CSUM) != 0, o)
        elif version == 4:
            if not cfg.enabled:
                rc = pass_up(JSTAT_XLATOR_DISABLED)
            elif not cfg.pool6_set:
                rc = pass_up(JSTAT_POOL6_UNSET)
            else:
                rc = core_4to6(ctx, p, n, &given, (in_flags[i] & PARTIAL_CSUM) != 0, o)
        else:
            rc = drop(JSTAT_L3HDR_OFFSET)
        verdict = <uint8_t>(rc >> 8)
        if verdict == V_NO_SPACE:
            o.used = used0
            o.n = n0
            if o.n > 0:
                return i            # drain and come back
            rc = drop(JSTAT_ENOMEM)  # would not fit even in an empty arena
            verdict = V_DROP
        elif verdict != V_TRANSLATED and verdict != V_DROP_ICMP:
            o.used = used0          # a drop or pass emits nothing
            o.n = n0
        verdicts[i] = verdict
        reasons[i] = rc & 0xff
        if version == 6:
            counters[JSTAT_RECEIVED6] += 1
        elif version == 4:
            counters[JSTAT_RECEIVED4] += 1
        if verdict == V_TRANSLATED:
            counters[JSTAT_SUCCESS] += 1
        else:
            counters[rc & 0xff] += 1
            if verdict == V_DROP_ICMP:
                counters[JSTAT_ICMP6ERR_SUCCESS if version == 6 else JSTAT_ICMP4ERR_SUCCESS] += 1
    return count


cdef uint32_t copy_batch(const uint8_t* inbuf, uint32_t incap, const uint32_t* in_off,
                         const uint32_t* in_len, uint32_t count, uint8_t* verdicts,
                         Out* o) noexcept nogil:
    """The baseline for benchmarks: the same walk over the batch and the same output
    records as run_batch, each packet copied to the arena untouched."""
    cdef uint32_t i, n
    for i in range(count):
        n = in_len[i]
        if <uint64_t>in_off[i] + n > incap or o.n >= o.max_n or n > o.cap - o.used:
            return i
        copy(o.buf, o.cap, o.used, inbuf, incap, in_off[i], n)
        o.rec_off[o.n] = o.used
        o.rec_len[o.n] = n
        o.rec_input[o.n] = i
        o.rec_kind[o.n] = rd8(inbuf, incap, in_off[i]) >> 4
        o.n += 1
        o.used += n
        verdicts[i] = V_TRANSLATED
    return count


# ------------------------------------------------------------------ Python face

cdef class Batch:
    """Packets in, outputs out: flat numpy arrays, reused from batch to batch."""
    cdef readonly object input, in_offset, in_length, in_flags, map_addr, map_port
    cdef readonly object verdict, reason
    cdef readonly object out, out_offset, out_length, out_input, out_kind
    cdef public uint32_t count
    cdef readonly uint32_t out_count
    cdef readonly uint32_t capacity
    cdef uint32_t fill

    def __init__(self, uint32_t capacity=256, uint32_t in_bytes=256 * 2048,
                 uint32_t out_bytes=256 * 4096, uint32_t max_outputs=0):
        self.capacity = capacity
        self.input = np.zeros(in_bytes, dtype=np.uint8)
        self.in_offset = np.zeros(capacity, dtype=np.uint32)
        self.in_length = np.zeros(capacity, dtype=np.uint32)
        self.in_flags = np.zeros(capacity, dtype=np.uint8)
        self.map_addr = np.zeros((capacity, 16), dtype=np.uint8)
        self.map_port = np.zeros(capacity, dtype=np.uint16)
        self.verdict = np.zeros(capacity, dtype=np.uint8)
        self.reason = np.zeros(capacity, dtype=np.uint16)
        if max_outputs == 0:
            max_outputs = capacity * 8
        self.out = np.zeros(out_bytes, dtype=np.uint8)
        self.out_offset = np.zeros(max_outputs, dtype=np.uint32)
        self.out_length = np.zeros(max_outputs, dtype=np.uint32)
        self.out_input = np.zeros(max_outputs, dtype=np.uint32)
        self.out_kind = np.zeros(max_outputs, dtype=np.uint8)
        self.clear()

    def clear(self):
        self.count = 0
        self.fill = 0
        self.out_count = 0

    def add(self, packet, map_addr, int map_port=0, bint partial_csum=False):
        """Appends one packet (a convenience for tests and tools)."""
        cdef bytes data = bytes(packet)
        cdef uint32_t n = len(data)
        if self.count >= self.capacity or self.fill + n > len(self.input):
            raise OverflowError("batch is full")
        self.input[self.fill:self.fill + n] = np.frombuffer(data, dtype=np.uint8)
        self.in_offset[self.count] = self.fill
        self.in_length[self.count] = n
        self.in_flags[self.count] = PARTIAL_CSUM if partial_csum else 0
        self.map_addr[self.count] = np.frombuffer(_mapping_bytes(map_addr), dtype=np.uint8)
        self.map_port[self.count] = map_port
        self.fill += n
        self.count += 1
        return self.count - 1

    def output(self, uint32_t j):
        if j >= self.out_count:
            raise IndexError(j)
        start = int(self.out_offset[j])
        return bytes(self.out[start:start + int(self.out_length[j])])

    def outputs_of(self, uint32_t i):
        """(kind, bytes) of every output produced by input i, in order."""
        return [(OutKind(int(self.out_kind[j])), self.output(j))
                for j in range(self.out_count) if self.out_input[j] == i]


def _mapping_bytes(addr):
    if addr is None:
        return bytes(16)
    if isinstance(addr, (bytes, bytearray)):
        return bytes(addr).ljust(16, b"\0")
    ip = ipaddress.ip_address(addr)
    return ip.packed.ljust(16, b"\0")


cdef class Translator:
    """One instance's translation core: its configuration and counters."""
    cdef XlatConfig cfg
    cdef Ctx ctx
    cdef readonly object counters
    cdef Batch _single

    def __init__(self, pool6="64:ff9b::/96", own4="192.0.2.2", own6="2001:db8::1",
                 mtu4_out=1500, mtu6_out=1500, mtu4_in=1500, mtu6_in=1500,
                 lowest_ipv6_mtu=1280, zeroize_traffic_class=False, override_tos=False,
                 tos=0, mtu_plateaus=DEFAULT_MTU_PLATEAUS, source_icmpv6_errors_better=True,
                 drop_icmpv6_info=False, manually_enabled=True, force=False):
        memset(&self.cfg, 0, sizeof(XlatConfig))
        self.counters = np.zeros(COUNTER_SLOTS, dtype=np.uint64)
        self.configure(pool6=pool6, own4=own4, own6=own6, mtu4_out=mtu4_out,
                       mtu6_out=mtu6_out, mtu4_in=mtu4_in, mtu6_in=mtu6_in,
                       lowest_ipv6_mtu=lowest_ipv6_mtu,
                       zeroize_traffic_class=zeroize_traffic_class, override_tos=override_tos,
                       tos=tos, mtu_plateaus=mtu_plateaus,
                       source_icmpv6_errors_better=source_icmpv6_errors_better,
                       drop_icmpv6_info=drop_icmpv6_info, manually_enabled=manually_enabled,
                       force=force)
        self._single = Batch(1, 65536 + 64, 128 * 1024, 64)
        self.ctx.next_ip_id = 1

    def configure(self, *, pool6, own4, own6, mtu4_out, mtu6_out, mtu4_in, mtu6_in,
                  lowest_ipv6_mtu, zeroize_traffic_class, override_tos, tos, mtu_plateaus,
                  source_icmpv6_errors_better, drop_icmpv6_info, manually_enabled, force=False):
        """Validates everything first, then replaces the configuration at once."""
        cdef XlatConfig c
        cdef cnp.uint64_t[::1] counters_view = self.counters
        memset(&c, 0, sizeof(XlatConfig))
        if pool6 is not None:
            net = ipaddress.IPv6Network(pool6, strict=True)
            if net.prefixlen not in POOL6_LENGTHS:
                raise ValueError(f"pool6 prefix length must be one of {POOL6_LENGTHS}")
            packed = net.network_address.packed
            if packed[8] != 0 and not force:
                raise ValueError("bits 64-71 of pool6 must be zero (RFC 6052 §2.2)")
            memcpy(c.pool6.addr, <const char*>packed, 16)
            c.pool6.length = net.prefixlen
            c.pool6_set = True
        own4_packed = ipaddress.IPv4Address(own4).packed
        own6_packed = ipaddress.IPv6Address(own6).packed
        memcpy(c.own4, <const char*>own4_packed, 4)
        memcpy(c.own6, <const char*>own6_packed, 16)
        for name, value in (("mtu4_out", mtu4_out), ("mtu6_out", mtu6_out),
                            ("mtu4_in", mtu4_in), ("mtu6_in", mtu6_in)):
            if not 68 <= value <= 65535:
                raise ValueError(f"{name} must be within 68-65535")
        if lowest_ipv6_mtu < 1280:
            raise ValueError("lowest-ipv6-mtu must be at least 1280")
        if not 0 <= tos <= 255:
            raise ValueError("tos must be within 0-255")
        plateaus = sorted({int(v) for v in mtu_plateaus if int(v) != 0}, reverse=True)
        if not plateaus or len(plateaus) > 64 or plateaus[0] > 65535 or plateaus[-1] < 0:
            raise ValueError("mtu-plateaus needs 1 to 64 values within 1-65535")
        c.mtu4_out = mtu4_out
        c.mtu6_out = mtu6_out
        c.mtu4_in = mtu4_in
        c.mtu6_in = mtu6_in
        c.lowest_ipv6_mtu = lowest_ipv6_mtu
        c.zeroize_traffic_class = zeroize_traffic_class
        c.override_tos = override_tos
        c.tos = tos
        for i, v in enumerate(plateaus):
            c.plateaus[i] = v
        c.n_plateaus = len(plateaus)
        c.source_icmpv6_errors_better = source_icmpv6_errors_better
        c.drop_icmpv6_info = drop_icmpv6_info
        c.enabled = manually_enabled
        self.cfg = c
        self.ctx.cfg = &self.cfg
        self.ctx.counters = <uint64_t*>&counters_view[0]

    def counter(self, name):
        return int(self.counters[COUNTER_IDS[name]])

    def counter_dict(self, include_zero=False):
        return {name: int(self.counters[i]) for i, name in enumerate(COUNTER_NAMES, 1)
                if include_zero or self.counters[i]}

    def run(self, Batch b not None):
        """Translates b.count packets of b with the GIL released; returns how many
        were processed. Outputs are appended after those already in b."""
        cdef cnp.uint8_t[::1] inbuf = b.input
        cdef cnp.uint32_t[::1] in_off = b.in_offset
        cdef cnp.uint32_t[::1] in_len = b.in_length
        cdef cnp.uint8_t[::1] in_flags = b.in_flags
        cdef cnp.uint8_t[:, ::1] map_addr = b.map_addr
        cdef cnp.uint16_t[::1] map_port = b.map_port
        cdef cnp.uint8_t[::1] verdicts = b.verdict
        cdef cnp.uint16_t[::1] reasons = b.reason
        cdef cnp.uint8_t[::1] outbuf = b.out
        cdef cnp.uint32_t[::1] out_off = b.out_offset
        cdef cnp.uint32_t[::1] out_len = b.out_length
        cdef cnp.uint32_t[::1] out_input = b.out_input
        cdef cnp.uint8_t[::1] out_kind = b.out_kind
        cdef Out o
        cdef uint32_t done, count = b.count
        if count > b.capacity:
            raise ValueError("count exceeds the batch capacity")
        o.buf = &outbuf[0]
        o.cap = outbuf.shape[0]
        o.rec_off = &out_off[0]
        o.rec_len = &out_len[0]
        o.rec_input = &out_input[0]
        o.rec_kind = &out_kind[0]
        o.max_n = out_off.shape[0]
        o.n = b.out_count
        o.used = 0 if o.n == 0 else out_off[o.n - 1] + out_len[o.n - 1]
        with nogil:
            done = run_batch(&self.ctx, &inbuf[0], inbuf.shape[0], &in_off[0], &in_len[0],
                             &in_flags[0], &map_addr[0, 0], &map_port[0], count,
                             &verdicts[0], &reasons[0], &o)
        b.out_count = o.n
        return done

    def run_copy(self, Batch b not None):
        """Benchmark baseline: like run(), but every packet is only copied."""
        cdef cnp.uint8_t[::1] inbuf = b.input
        cdef cnp.uint32_t[::1] in_off = b.in_offset
        cdef cnp.uint32_t[::1] in_len = b.in_length
        cdef cnp.uint8_t[::1] verdicts = b.verdict
        cdef cnp.uint8_t[::1] outbuf = b.out
        cdef cnp.uint32_t[::1] out_off = b.out_offset
        cdef cnp.uint32_t[::1] out_len = b.out_length
        cdef cnp.uint32_t[::1] out_input = b.out_input
        cdef cnp.uint8_t[::1] out_kind = b.out_kind
        cdef Out o
        cdef uint32_t done, count = min(b.count, b.capacity)
        o.buf = &outbuf[0]
        o.cap = outbuf.shape[0]
        o.rec_off = &out_off[0]
        o.rec_len = &out_len[0]
        o.rec_input = &out_input[0]
        o.rec_kind = &out_kind[0]
        o.max_n = out_off.shape[0]
        o.n = 0
        o.used = 0
        with nogil:
            done = copy_batch(&inbuf[0], inbuf.shape[0], &in_off[0], &in_len[0], count,
                              &verdicts[0], &o)
        b.out_count = o.n
        return done

    def translate(self, packet, map_addr=None, int map_port=0, bint partial_csum=False):
        """One packet: (Verdict, reason counter ID, [(OutKind, bytes), ...])."""
        cdef Batch b = self._single
        b.clear()
        b.add(packet, map_addr, map_port, partial_csum)
        self.run(b)
        return Verdict(int(b.verdict[0])), int(b.reason[0]), b.outputs_of(0)
