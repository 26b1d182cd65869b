"""The packet pipeline, named after RFC 6146 §3's steps, and its batch driver.

    3.4 determine the incoming tuple   -> determine_incoming_tuple_6 / _4
    3.5 filtering and updating         -> nat64.pyx (BIB and sessions, tables.pyx)
    3.6 compute the outgoing tuple     -> compute_outgoing_tuple_6 / _4
    3.7 translate the packet           -> rfc7915.pyx
    3.8 hairpinning                    -> handle_hairpinning

Sans-I/O: `run_batch` takes packets in one contiguous buffer and writes outputs to
an arena, with the GIL released and no Python object per packet: a pure function
of (packets, tables, configuration, now). A Translator without tables is the
stateless translator of docs/core-api.md: the caller gives the outgoing tuple.
"""

from enum import IntEnum
import ipaddress

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset, memmove, memcmp

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
from jool._fast.nat64 cimport (filtering_and_updating_6, filtering_and_updating_4,
                               error_mapping_6, error_mapping_4, expire_pass, pool4_contains,
                               notify_stored_syns, prefetch_ahead,
                               PREFETCH_GROUP)
from jool._fast.tables cimport *
from jool._fast.tables import PROTO_NAMES, PROTO_NUMBERS, TCP_STATE_NAMES
from jool._fast.rfc6052 cimport rfc6052_embed
from jool.config.pool4 import Pool4, fuse_ranges
from jool._fast.atomics cimport jool_load64, jool_store64
from jool._fast import parse as _parse_module, rfc7915 as _rfc7915_module, \
    nat64 as _nat64_module
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
    REASSEMBLED = 2
FLAG_PARTIAL_CSUM = PARTIAL_CSUM
FLAG_REASSEMBLED = REASSEMBLED


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
    GSO_IPV4 = OUT_IPV4 | OUT_GSO       # a TCP super-frame for the kernel to segment
    GSO_IPV6 = OUT_IPV6 | OUT_GSO


def bounds_violations():
    """Packet accesses refused by the checked build, over every kernel module."""
    return (jool_bounds_violations + _parse_module.bounds_violations()
            + _rfc7915_module.bounds_violations() + _nat64_module.bounds_violations())


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


cdef inline int compute_outgoing_tuple_6(Ctx* ctx, const uint8_t* p, uint32_t n,
                                         const IPInfo* info, bint is_error,
                                         const Mapping* given, Mapping* out, Out* o) noexcept nogil:
    """RFC 6146 §3.5 and §3.6: the stateful core decides the tuple from the BIB and
    sessions (updating them); the stateless core takes the caller's."""
    if ctx.nat == NULL:
        out[0] = given[0]
        return 0
    if is_error:                # §3.5 last paragraph: errors only need the BIB
        return error_mapping_6(ctx, p, n, info, out)
    return filtering_and_updating_6(ctx, p, n, info, out)


cdef int handle_hairpinning(Ctx* ctx, uint32_t rec, Out* o) noexcept nogil:
    """RFC 6146 §3.8: a translated IPv4 packet whose destination is one of our own
    pool4 transport addresses goes through the 4->6 path at once, TTL kept."""
    cdef uint8_t* q = o.buf + o.rec_off[rec]
    cdef uint32_t qlen = o.rec_len[rec]
    cdef uint32_t used0, n0, first_new, moved, i
    cdef uint16_t port
    cdef uint8_t proto
    cdef int rc
    cdef const uint8_t* own_empty
    cdef uint32_t ihl
    cdef const uint8_t* addr
    if qlen < 28:
        return 0
    proto = q[9]
    addr = q + 16
    if proto == PROTO_ICMP and q[20] != 8 and q[20] != 0:
        # An ICMP error's outgoing tuple is its quoted packet's, reversed: the
        # quoted source is where it goes (Jool compares the tuple, not the header).
        if qlen < 48:
            return 0
        ihl = (q[28] & 0xf) * 4
        if ihl < 20 or qlen < 28 + ihl + 8:
            return 0
        proto = q[28 + 9]
        addr = q + 28 + 12
        if proto == PROTO_ICMP:
            port = (<uint16_t>q[28 + ihl + 4] << 8) | q[28 + ihl + 5]
        else:
            port = (<uint16_t>q[28 + ihl] << 8) | q[28 + ihl + 1]
    elif proto == PROTO_ICMP:
        port = (<uint16_t>q[24] << 8) | q[25]
    else:
        port = (<uint16_t>q[22] << 8) | q[23]
    if not pool4_contains(ctx.nat, ctx.nat.empty_addr, proto, addr, port):
        return 0
    first_new = o.n
    used0 = o.used
    ctx.hairpin = True
    ctx.hint = 0
    rc = core_4to6(ctx, q, qlen, NULL, False, o)
    ctx.hairpin = False
    if rc and (rc >> 8) != V_DROP_ICMP:
        return rc
    # Replace the intermediate IPv4 packet with what the second pass produced.
    moved = o.used - used0
    memmove(q, o.buf + used0, moved)
    for i in range(first_new, o.n):
        o.rec_off[i - 1] = o.rec_off[i] - qlen
        o.rec_len[i - 1] = o.rec_len[i]
        o.rec_input[i - 1] = o.rec_input[i]
        o.rec_kind[i - 1] = o.rec_kind[i]
        if o.rec_gso != NULL:
            o.rec_gso[i - 1] = o.rec_gso[i]
    o.n -= 1
    o.used -= qlen
    return rc


cdef int core_6to4(Ctx* ctx, const uint8_t* p, uint32_t n, const Mapping* given,
                   bint partial, Out* o) noexcept nogil:
    cdef IPInfo info
    cdef Mapping m
    cdef bint is_error
    cdef uint32_t rec = o.n
    cdef int rc = determine_incoming_tuple_6(ctx, p, n, &info, &is_error, o)
    if rc:
        return rc
    rc = compute_outgoing_tuple_6(ctx, p, n, &info, is_error, given, &m, o)
    if rc:
        return rc
    if is_error:
        rc = translate_icmp6_error(ctx, p, n, &info, &m, o)
    else:
        rc = translate_6to4(ctx, p, n, &info, &m, partial, o)
    if rc == 0 and ctx.nat != NULL and o.n == rec + 1 and o.rec_kind[rec] == OUT_IPV4:
        rc = handle_hairpinning(ctx, rec, o)            # RFC 6146 §3.8
    return rc


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


cdef inline int compute_outgoing_tuple_4(Ctx* ctx, const uint8_t* p, uint32_t n,
                                         const IPInfo* info, bint is_error,
                                         const Mapping* given, Mapping* out, Out* o) noexcept nogil:
    if ctx.nat == NULL:
        out[0] = given[0]
        return 0
    if is_error:
        return error_mapping_4(ctx, p, n, info, out)
    return filtering_and_updating_4(ctx, p, n, info, out, o)


cdef int core_4to6(Ctx* ctx, const uint8_t* p, uint32_t n, const Mapping* given,
                   bint partial, Out* o) noexcept nogil:
    cdef IPInfo info
    cdef Mapping m
    cdef bint is_error
    cdef int rc = determine_incoming_tuple_4(ctx, p, n, &info, &is_error, o)
    if rc:
        return rc
    rc = compute_outgoing_tuple_4(ctx, p, n, &info, is_error, given, &m, o)
    if rc:
        return rc
    if is_error:
        return translate_icmp4_error(ctx, p, n, &info, &m, o)
    return translate_4to6(ctx, p, n, &info, &m, partial, o)


# ------------------------------------------------------------------ batch driver

cdef uint32_t run_batch(Ctx* ctx, const uint8_t* inbuf, uint32_t incap,
                        const uint32_t* in_off, const uint32_t* in_len, const uint8_t* in_flags,
                        const uint8_t* map_addr, const uint16_t* map_port, const uint32_t* marks,
                        uint32_t count, uint8_t* verdicts, uint16_t* reasons, Out* o) noexcept nogil:
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
    # A software pipeline over the cache misses of large tables, in groups of
    # PREFETCH_GROUP packets, three groups in flight: entering group g, the index
    # slots of group g + 2 and the session entries of group g + 1 are prefetched
    # (nat64.prefetch_ahead), so group g finds its entries cached. ctx.hint hands
    # each packet's hash on to its lookup.
    cdef uint64_t hashes[4 * PREFETCH_GROUP]
    cdef bint v6s[4 * PREFETCH_GROUP]
    for i in range(count):
        ctx.hint = 0
        if ctx.nat != NULL:
            if i % PREFETCH_GROUP == 0:
                prefetch_ahead(ctx, inbuf, incap, in_off, in_len, count, i // PREFETCH_GROUP,
                               hashes, v6s)
            ctx.hint = hashes[((i // PREFETCH_GROUP) % 4) * PREFETCH_GROUP + i % PREFETCH_GROUP]
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
        ctx.mark = marks[i]
        ctx.reassembled = (in_flags[i] & REASSEMBLED) != 0
        ctx.gso_size = ctx.in_gso[i] if ctx.in_gso != NULL else 0
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
        elif reasons[i] == 0:
            counters[JSTAT_UNKNOWN] += 1
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
        if o.rec_gso != NULL:
            o.rec_gso[o.n] = 0
        o.n += 1
        o.used += n
        verdicts[i] = V_TRANSLATED
    return count


# ------------------------------------------------------------------ Python face

cdef class Batch:
    """Packets in, outputs out: flat numpy arrays, reused from batch to batch."""

    def __init__(self, uint32_t capacity=256, uint32_t in_bytes=256 * 2048,
                 uint32_t out_bytes=256 * 4096, uint32_t max_outputs=0):
        self.capacity = capacity
        self.input = np.zeros(in_bytes, dtype=np.uint8)
        self.in_offset = np.zeros(capacity, dtype=np.uint32)
        self.in_length = np.zeros(capacity, dtype=np.uint32)
        self.in_flags = np.zeros(capacity, dtype=np.uint8)
        self.in_mark = np.zeros(capacity, dtype=np.uint32)
        self.map_addr = np.zeros((capacity, 16), dtype=np.uint8)
        self.map_port = np.zeros(capacity, dtype=np.uint16)
        self.verdict = np.zeros(capacity, dtype=np.uint8)
        self.reason = np.zeros(capacity, dtype=np.uint16)
        self.in_gso = np.zeros(capacity, dtype=np.uint16)
        if max_outputs == 0:
            max_outputs = capacity * 8
        self.out = np.zeros(out_bytes, dtype=np.uint8)
        self.out_offset = np.zeros(max_outputs, dtype=np.uint32)
        self.out_length = np.zeros(max_outputs, dtype=np.uint32)
        self.out_input = np.zeros(max_outputs, dtype=np.uint32)
        self.out_kind = np.zeros(max_outputs, dtype=np.uint8)
        self.out_gso = np.zeros(max_outputs, dtype=np.uint16)
        self.clear()

    def clear(self):
        self.count = 0
        self.fill = 0
        self.out_count = 0

    def add(self, packet, map_addr=None, int map_port=0, bint partial_csum=False,
            uint32_t mark=0, bint reassembled=False, uint16_t gso_size=0):
        """Appends one packet (a convenience for tests and tools). gso_size: the
        packet is a TCP super-frame of segments of that size (run(gso=True))."""
        cdef bytes data = bytes(packet)
        cdef uint32_t n = len(data)
        if self.count >= self.capacity or self.fill + n > len(self.input):
            raise OverflowError("batch is full")
        self.input[self.fill:self.fill + n] = np.frombuffer(data, dtype=np.uint8)
        self.in_offset[self.count] = self.fill
        self.in_length[self.count] = n
        self.in_flags[self.count] = (PARTIAL_CSUM if partial_csum else 0) \
            | (REASSEMBLED if reassembled else 0)
        self.map_addr[self.count] = np.frombuffer(_mapping_bytes(map_addr), dtype=np.uint8)
        self.map_port[self.count] = map_port
        self.in_mark[self.count] = mark
        self.in_gso[self.count] = gso_size
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
    """One instance's translation core: configuration, counters and, for NAT64,
    its shared tables (docs/core-api.md, docs/stateful-api.md)."""

    def __init__(self, tables=None, pool6="64:ff9b::/96", own4="192.0.2.2", own6="2001:db8::1",
                 mtu4_out=1500, mtu6_out=1500, mtu4_in=1500, mtu6_in=1500,
                 lowest_ipv6_mtu=1280, zeroize_traffic_class=False, override_tos=False,
                 tos=0, mtu_plateaus=DEFAULT_MTU_PLATEAUS, source_icmpv6_errors_better=True,
                 drop_icmpv6_info=False, manually_enabled=True, force=False,
                 address_dependent_filtering=False, drop_externally_initiated_tcp=False,
                 handle_rst_during_fin_rcv=False, f_args=0b1011, maximum_simultaneous_opens=10,
                 tcp_est_timeout=7_200_000, tcp_trans_timeout=240_000, udp_timeout=300_000,
                 icmp_timeout=60_000, empty_pool4_addr=None, counters=None):
        memset(&self.cfg, 0, sizeof(XlatConfig))
        memset(&self.nat, 0, sizeof(Nat64Config))
        # counters: optionally a uint64 view into shared memory (a worker's row of
        # the instance's counter block), so the control process can sum them.
        if counters is None:
            counters = np.zeros(COUNTER_SLOTS, dtype=np.uint64)
        elif counters.dtype != np.uint64 or counters.shape[0] < COUNTER_SLOTS:
            raise ValueError("counters must be a uint64 array of at least 70 entries")
        self.counters = counters
        self.tables = tables
        self.pool4 = Pool4()
        self._options = dict(
            pool6=pool6, own4=own4, own6=own6, mtu4_out=mtu4_out, mtu6_out=mtu6_out,
            mtu4_in=mtu4_in, mtu6_in=mtu6_in, lowest_ipv6_mtu=lowest_ipv6_mtu,
            zeroize_traffic_class=zeroize_traffic_class, override_tos=override_tos, tos=tos,
            mtu_plateaus=tuple(mtu_plateaus), source_icmpv6_errors_better=source_icmpv6_errors_better,
            drop_icmpv6_info=drop_icmpv6_info, manually_enabled=manually_enabled, force=force,
            address_dependent_filtering=address_dependent_filtering,
            drop_externally_initiated_tcp=drop_externally_initiated_tcp,
            handle_rst_during_fin_rcv=handle_rst_during_fin_rcv, f_args=f_args,
            maximum_simultaneous_opens=maximum_simultaneous_opens,
            tcp_est_timeout=tcp_est_timeout, tcp_trans_timeout=tcp_trans_timeout,
            udp_timeout=udp_timeout, icmp_timeout=icmp_timeout,
            empty_pool4_addr=empty_pool4_addr if empty_pool4_addr else own4)
        self.configure(pool6=pool6, own4=own4, own6=own6, mtu4_out=mtu4_out,
                       mtu6_out=mtu6_out, mtu4_in=mtu4_in, mtu6_in=mtu6_in,
                       lowest_ipv6_mtu=lowest_ipv6_mtu,
                       zeroize_traffic_class=zeroize_traffic_class, override_tos=override_tos,
                       tos=tos, mtu_plateaus=mtu_plateaus,
                       source_icmpv6_errors_better=source_icmpv6_errors_better,
                       drop_icmpv6_info=drop_icmpv6_info, manually_enabled=manually_enabled,
                       force=force)
        self.configure_nat64(address_dependent_filtering=address_dependent_filtering,
                             drop_externally_initiated_tcp=drop_externally_initiated_tcp,
                             handle_rst_during_fin_rcv=handle_rst_during_fin_rcv,
                             f_args=f_args, maximum_simultaneous_opens=maximum_simultaneous_opens,
                             tcp_est_timeout=tcp_est_timeout, tcp_trans_timeout=tcp_trans_timeout,
                             udp_timeout=udp_timeout, icmp_timeout=icmp_timeout,
                             empty_pool4_addr=empty_pool4_addr if empty_pool4_addr else own4)
        self._single = Batch(1, 65536 + 64, 128 * 1024, 64)
        self.ctx.next_ip_id = 1
        self.ctx.in_gso = NULL
        self.ctx.gso_size = 0

    # ------------------------------------------------------------ configuration

    def configure(self, *, pool6, own4, own6, mtu4_out, mtu6_out, mtu4_in, mtu6_in,
                  lowest_ipv6_mtu, zeroize_traffic_class, override_tos, tos, mtu_plateaus,
                  source_icmpv6_errors_better, drop_icmpv6_info, manually_enabled, force=False):
        """Validates everything first, then replaces the configuration at once."""
        cdef XlatConfig c
        cdef cnp.uint64_t[::1] counters_view = self.counters[:COUNTER_SLOTS]
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

    def configure_nat64(self, *, address_dependent_filtering, drop_externally_initiated_tcp,
                        handle_rst_during_fin_rcv, f_args, maximum_simultaneous_opens,
                        tcp_est_timeout, tcp_trans_timeout, udp_timeout, icmp_timeout,
                        empty_pool4_addr):
        if not 0 <= f_args <= 15:
            raise ValueError("f-args must be within 0-15")
        for name, value in (("tcp-est-timeout", tcp_est_timeout),
                            ("tcp-trans-timeout", tcp_trans_timeout),
                            ("udp-timeout", udp_timeout), ("icmp-timeout", icmp_timeout),
                            ("maximum-simultaneous-opens", maximum_simultaneous_opens)):
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError(f"{name} must be a 32-bit unsigned integer")
        empty = ipaddress.IPv4Address(empty_pool4_addr).packed
        self.nat.address_dependent_filtering = address_dependent_filtering
        self.nat.drop_externally_initiated_tcp = drop_externally_initiated_tcp
        self.nat.handle_rst_during_fin_rcv = handle_rst_during_fin_rcv
        self.nat.f_args = f_args
        self.nat.maximum_simultaneous_opens = maximum_simultaneous_opens
        self.nat.tcp_est_timeout = tcp_est_timeout
        self.nat.tcp_trans_timeout = tcp_trans_timeout
        self.nat.udp_timeout = udp_timeout
        self.nat.icmp_timeout = icmp_timeout
        memcpy(self.nat.empty_addr, <const char*>empty, 4)
        self._compile_pool4()

    def _compile_pool4(self):
        """pool4 (jool.config.pool4) into the plain arrays the kernels read."""
        cdef Pool4Set[::1] sets_view
        cdef cnp.uint8_t[::1] raw
        sets = []
        ranges = []
        for pset in self.pool4.ordered_sets():
            first = len(ranges)
            before = 0
            for addr, lo, hi in pset.entries():
                ranges.append((addr, lo, hi, before))
                before += hi - lo + 1
            sets.append((pset.mark, PROTO_NUMBERS[pset.proto], first, len(ranges) - first,
                         before, pset.effective_iterations))
        members = []
        member_first = []
        for proto in ("tcp", "udp", "icmp"):
            merged = {}
            for pset in self.pool4.sets.values():
                if pset.proto == proto:
                    for addr, rs in pset.ranges.items():
                        merged.setdefault(addr, []).extend(rs)
            member_first.append(len(members))
            for addr in sorted(merged):
                for lo, hi in fuse_ranges(merged[addr]):
                    members.append((addr, lo, hi, 0))
        self._sets = np.zeros(max(len(sets), 1) * sizeof(Pool4Set), dtype=np.uint8)
        self._ranges = _pack_ranges(ranges)
        self._members = _pack_ranges(members)
        raw = self._sets
        for i, (mark, proto, first, count, total, iters) in enumerate(sets):
            (<Pool4Set*>&raw[0])[i].mark = mark
            (<Pool4Set*>&raw[0])[i].proto = proto
            (<Pool4Set*>&raw[0])[i].first = first
            (<Pool4Set*>&raw[0])[i].count = count
            (<Pool4Set*>&raw[0])[i].total = total
            (<Pool4Set*>&raw[0])[i].max_iterations = iters
        self.nat.sets = <Pool4Set*>&raw[0]
        self.nat.n_sets = len(sets)
        raw = self._ranges
        self.nat.ranges = <Pool4Range*>&raw[0]
        raw = self._members
        self.nat.members = <Pool4Range*>&raw[0]
        for i in range(3):
            self.nat.member_first[i] = member_first[i]
            end = member_first[i + 1] if i < 2 else len(members)
            self.nat.member_count[i] = end - member_first[i]
        self.nat.pool4_empty = self.pool4.empty
        self.ctx.nat = &self.nat if self.tables is not None else NULL
        self.ctx.tables = self.tables.view() if self.tables is not None else NULL

    @property
    def options(self):
        return dict(self._options)

    def update(self, **changes):
        """Changes options (the constructor's names). Everything is validated before
        anything is applied: on error the translator is left exactly as it was."""
        unknown = set(changes) - set(self._options)
        if unknown:
            raise TypeError(f"unknown options: {sorted(unknown)}")
        merged = dict(self._options, **changes)
        probe = Translator(**merged)            # validation without side effects
        del probe
        xlat_keys = ("pool6", "own4", "own6", "mtu4_out", "mtu6_out", "mtu4_in", "mtu6_in",
                     "lowest_ipv6_mtu", "zeroize_traffic_class", "override_tos", "tos",
                     "mtu_plateaus", "source_icmpv6_errors_better", "drop_icmpv6_info",
                     "manually_enabled", "force")
        self.configure(**{k: merged[k] for k in xlat_keys})
        self.configure_nat64(**{k: merged[k] for k in merged if k not in xlat_keys})
        self._options = merged

    def set_clock(self, uint32_t now_ms):
        """The time (ms, wrapping) that changes made outside a batch or a timer pass
        carry: `bib add`, `bib remove`, pool4 removals (their events are logged)."""
        self.ctx.now = now_ms

    def set_pool4(self, pool4):
        """Replaces pool4 wholesale (an atomic configuration file); BIB entries stay."""
        self.pool4 = pool4
        self._compile_pool4()

    # ------------------------------------------------------------ pool4 and BIB

    def pool4_add(self, proto, prefix, port_min=61001, port_max=65535, mark=0,
                  max_iterations="keep"):
        """max_iterations: "keep" (the set's own), None (auto), 0 (infinity) or N."""
        self.pool4.add(proto, prefix, port_min, port_max, mark,
                       None if max_iterations == "keep" else max_iterations,
                       set_iterations=max_iterations != "keep")
        self._compile_pool4()

    def pool4_remove(self, proto, prefix, port_min=0, port_max=65535, mark=0, quick=False):
        removed = self.pool4.remove(proto, prefix, port_min, port_max, mark)
        self._compile_pool4()
        notices = []
        if not quick and self.tables is not None:
            for addr, lo, hi in removed:
                notices += self._bib_remove_range(proto, addr, lo, hi)
        return notices

    def pool4_flush(self, quick=False):
        entries = [(s.proto, a, lo, hi) for s in self.pool4.sets.values()
                   for a, lo, hi in s.entries()]
        self.pool4.flush()
        self._compile_pool4()
        notices = []
        if not quick and self.tables is not None:
            for proto, addr, lo, hi in entries:
                notices += self._bib_remove_range(proto, addr, lo, hi)
        return notices

    def pool4_entries(self):
        rows = []
        for pset in self.pool4.ordered_sets():
            for addr, lo, hi in pset.entries():
                rows.append((pset.mark, pset.proto.upper(), str(ipaddress.IPv4Address(addr)),
                             lo, hi, pset.effective_iterations, pset.max_iterations is None))
        return rows

    def _bib_remove_range(self, proto, uint32_t addr, uint16_t lo, uint16_t hi):
        """Non-quick pool4 removal (spec §3.2): BIB entries of the range, any mark."""
        cdef View* t = self.tables.view()
        cdef uint8_t p = PROTO_NUMBERS[proto.lower()]
        cdef uint32_t e
        cdef uint8_t a[4]
        a[0] = addr >> 24; a[1] = (addr >> 16) & 0xff; a[2] = (addr >> 8) & 0xff; a[3] = addr & 0xff
        doomed = []
        lock(t)
        try:
            for e in range(t.h.bib_hwm):
                if t.bib[e].flags & B_IN_USE and t.bib[e].proto == p \
                        and memcmp(t.bib[e].src4, a, 4) == 0 and lo <= t.bib[e].port4 <= hi:
                    doomed.append(e)
        finally:
            unlock(t)
        return self._remove_bibs(doomed)

    def _remove_bibs(self, entries):
        """Removes BIB entries with their sessions; returns the port unreachables
        owed to the SYNs those sessions held (spec §5.4) as [(OutKind, bytes)]."""
        cdef View* t = self.tables.view()
        cdef Batch b = Batch(1, 64, 64 * 1024, 128)
        cdef Out o
        cdef uint32_t e
        results = []
        self.ctx.tables = t
        for e in entries:
            b.clear()
            self._bind_out(b, &o)
            lock(t)
            if t.bib[e].flags & B_IN_USE:
                notify_stored_syns(&self.ctx, e, &o)
                bib_remove(t, e, self.ctx.now)
            unlock(t)
            b.out_count = o.n
            results.extend((OutKind(int(b.out_kind[j])), b.output(j)) for j in range(o.n))
        return results

    def _require_tables(self):
        if self.tables is None:
            raise ValueError("a stateless translator has no BIB")
        return self.tables

    def bib_add(self, proto, addr6, uint16_t port6, addr4, uint16_t port4):
        """A static BIB entry (spec §5.4). Raises OSError(17) on a conflicting entry,
        ValueError when the IPv4 transport address is not in pool4."""
        cdef Tables tables = self._require_tables()
        cdef View* t = tables.view()
        cdef uint8_t p = PROTO_NUMBERS[proto.lower()]
        cdef bytes a6 = ipaddress.IPv6Address(addr6).packed
        cdef bytes a4 = ipaddress.IPv4Address(addr4).packed
        cdef uint32_t by6, by4, i
        if not pool4_contains(&self.nat, self.nat.empty_addr, p, a4, port4):
            raise ValueError(f"{addr4}#{port4} does not belong to pool4")
        lock(t)
        try:
            by6 = bib_find6(t, a6, port6, p)
            by4 = bib_find4(t, a4, port4, p)
            if by6 != NONE and by6 == by4:
                t.bib[by6].flags |= B_STATIC            # a dynamic entry becomes static
                return
            if by6 != NONE or by4 != NONE:
                raise OSError(17, "The BIB entry collides with an existing one")
            if bib_create(t, a6, port6, a4, port4, p, True, self.ctx.now) == NONE:
                raise MemoryError("the BIB is full")
            if p == PROTO_TCP:          # spec §9: type 1 SYNs aimed at it are discarded
                for i in range(t.h.so_cap):
                    if t.so[i].kind == SO_TYPE1 and t.so[i].local_port == port4 \
                            and memcmp(t.so[i].local4, <const char*>a4, 4) == 0:
                        so_free(t, i)
        finally:
            unlock(t)

    def bib_remove(self, proto, addr6=None, port6=None, addr4=None, port4=None):
        """Removes a BIB entry (static or dynamic) and its sessions; either side may
        identify it, both must agree when given. Raises OSError(3) if absent."""
        cdef Tables tables = self._require_tables()
        cdef View* t = tables.view()
        cdef uint8_t p = PROTO_NUMBERS[proto.lower()]
        cdef uint32_t b = NONE, other
        lock(t)
        try:
            if addr6 is not None:
                b = bib_find6(t, ipaddress.IPv6Address(addr6).packed, port6, p)
            if addr4 is not None:
                other = bib_find4(t, ipaddress.IPv4Address(addr4).packed, port4, p)
                if addr6 is not None and other != b:
                    b = NONE
                else:
                    b = other
        finally:
            unlock(t)
        if b == NONE:
            raise OSError(3, "The BIB entry does not exist")
        return self._remove_bibs([b])

    def bib_entries(self, proto):
        return self._require_tables().bib_list(proto)

    def sessions(self, proto, uint32_t now_ms=0):
        """The sessions of one protocol as Jool shows them (docs/stateful-api.md)."""
        rows = [self._session_view(r, now_ms) for r in self._require_tables().session_records(proto)]
        rows.sort(key=lambda d: (ipaddress.IPv4Address(d["src4"]), d["sport4"],
                                 ipaddress.IPv4Address(d["dst4"]), d["dport4"]))
        return rows

    def _session_view(self, r, uint32_t now_ms):
        """A raw session record (tables.pyx) in Jool's terms: the four transport
        addresses, protocol, TCP state and time left."""
        cdef uint8_t embedded[16]
        cdef bytes dst4 = r["dst4"]
        rfc6052_embed(&self.cfg.pool6, dst4, embedded)
        icmp = r["proto"] == PROTO_ICMP
        left = self._timeout(r) - ((now_ms - r["last"]) & 0xFFFFFFFF)
        return dict(
            src6=str(ipaddress.IPv6Address(r["src6"])), sport6=r["sport6"],
            dst6=str(ipaddress.IPv6Address(bytes(embedded[:16]))),
            dport6=r["sport6"] if icmp else r["dport"],
            src4=str(ipaddress.IPv4Address(r["src4"])), sport4=r["port4"],
            dst4=str(ipaddress.IPv4Address(dst4)),
            dport4=r["port4"] if icmp else r["dport"],
            proto=PROTO_NAMES[r["proto"]],
            state=TCP_STATE_NAMES[r["state"]] if r["proto"] == PROTO_TCP else None,
            expires_in_ms=max(left, 0))

    def _timeout(self, r):
        if r["timer"] == TIMER_SYN4:
            return 6000
        if r["timer"] == TIMER_TRANS:
            return self.nat.tcp_trans_timeout
        return {PROTO_TCP: self.nat.tcp_est_timeout, PROTO_UDP: self.nat.udp_timeout}.get(
            r["proto"], self.nat.icmp_timeout)

    # ------------------------------------------------------------ counters

    def _refresh_gauges(self):
        if self.tables is not None:
            bibs, sessions = self.tables.counts()
            self.counters[JSTAT_BIB_ENTRIES] = bibs
            self.counters[JSTAT_SESSIONS] = sessions

    def counter(self, name):
        self._refresh_gauges()
        return int(self.counters[COUNTER_IDS[name]])

    def counter_dict(self, include_zero=False):
        self._refresh_gauges()
        return {name: int(self.counters[i]) for i, name in enumerate(COUNTER_NAMES, 1)
                if include_zero or self.counters[i]}

    # ------------------------------------------------------------ packets

    def run(self, Batch b not None, uint32_t now_ms=0, bint gso=False):
        """Translates b.count packets of b with the GIL released; returns how many
        were processed. Outputs are appended after those already in b.
        gso: inputs with b.in_gso set are super-frames that may leave whole, as
        outputs with OutKind flag GSO and b.out_gso their segment size (a worker
        whose egress writes virtio-net headers); else they are cut into segments."""
        cdef cnp.uint8_t[::1] inbuf = b.input
        cdef cnp.uint32_t[::1] in_off = b.in_offset
        cdef cnp.uint32_t[::1] in_len = b.in_length
        cdef cnp.uint8_t[::1] in_flags = b.in_flags
        cdef cnp.uint32_t[::1] in_mark = b.in_mark
        cdef cnp.uint8_t[:, ::1] map_addr = b.map_addr
        cdef cnp.uint16_t[::1] map_port = b.map_port
        cdef cnp.uint8_t[::1] verdicts = b.verdict
        cdef cnp.uint16_t[::1] reasons = b.reason
        cdef cnp.uint16_t[::1] in_gso = b.in_gso
        cdef cnp.uint16_t[::1] out_gso = b.out_gso
        cdef Out o
        cdef uint32_t done, count = b.count
        if count > b.capacity:
            raise ValueError("count exceeds the batch capacity")
        self._bind_out(b, &o)
        if gso:
            o.rec_gso = &out_gso[0]
            self.ctx.in_gso = &in_gso[0]
        if self.tables is not None:
            self.ctx.tables = self.tables.view()
        self.ctx.now = now_ms
        with nogil:
            done = run_batch(&self.ctx, &inbuf[0], inbuf.shape[0], &in_off[0], &in_len[0],
                             &in_flags[0], &map_addr[0, 0], &map_port[0], &in_mark[0], count,
                             &verdicts[0], &reasons[0], &o)
        self.ctx.in_gso = NULL
        b.out_count = o.n
        return done

    cdef void _bind_out(self, Batch b, Out* o):
        cdef cnp.uint8_t[::1] outbuf = b.out
        cdef cnp.uint32_t[::1] out_off = b.out_offset
        cdef cnp.uint32_t[::1] out_len = b.out_length
        cdef cnp.uint32_t[::1] out_input = b.out_input
        cdef cnp.uint8_t[::1] out_kind = b.out_kind
        out_init(o, &outbuf[0], outbuf.shape[0], &out_off[0], &out_len[0], &out_input[0],
                 &out_kind[0], NULL, out_off.shape[0])
        o.n = b.out_count
        o.used = 0 if o.n == 0 else out_off[o.n - 1] + out_len[o.n - 1]

    def run_copy(self, Batch b not None):
        """Benchmark baseline: like run(), but every packet is only copied."""
        cdef cnp.uint8_t[::1] inbuf = b.input
        cdef cnp.uint32_t[::1] in_off = b.in_offset
        cdef cnp.uint32_t[::1] in_len = b.in_length
        cdef cnp.uint8_t[::1] verdicts = b.verdict
        cdef Out o
        cdef uint32_t done, count = min(b.count, b.capacity)
        b.out_count = 0
        self._bind_out(b, &o)
        with nogil:
            done = copy_batch(&inbuf[0], inbuf.shape[0], &in_off[0], &in_len[0], count,
                              &verdicts[0], &o)
        b.out_count = o.n
        return done

    def translate(self, packet, map_addr=None, int map_port=0, bint partial_csum=False,
                  uint32_t now_ms=0, uint32_t mark=0, bint reassembled=False):
        """One packet: (Verdict, reason counter ID, [(OutKind, bytes), ...]).
        reassembled: the packet was put together from IPv6 fragments."""
        cdef Batch b = self._single
        b.clear()
        b.add(packet, map_addr, map_port, partial_csum, mark, reassembled)
        self.run(b, now_ms)
        return Verdict(int(b.verdict[0])), int(b.reason[0]), b.outputs_of(0)

    # ------------------------------------------------------------ timers and events

    def expire(self, uint32_t now_ms):
        """The timer pass (spec §5.2): removes what expired, returns the TCP probes
        and ICMP errors for stored SYNs to send, as [(OutKind, bytes)]."""
        cdef Tables tables = self._require_tables()
        cdef Batch b = Batch(1, 64, 256 * 1024, 2048)
        cdef Out o
        cdef uint32_t first = 0, cap = tables.capacity, stop
        results = []
        self.ctx.tables = tables.view()
        self.ctx.now = now_ms
        while True:
            b.clear()
            self._bind_out(b, &o)
            with nogil:
                stop = expire_pass(&self.ctx, first, cap - first, &o)
            b.out_count = o.n
            results.extend((OutKind(int(b.out_kind[j])), b.output(j)) for j in range(o.n))
            if stop >= cap or o.n == 0 and stop == first:
                break
            first = stop
        return results

    def session_events(self, int limit=-1):
        """Drains the table's event ring: [(kind, record)], kind one of "created",
        "updated", "removed" (sessions: the record as `sessions()` shows one) or
        "bib-created", "bib-removed" (BIB entries: src6, sport6, src4, sport4,
        proto, static). Each record has the event's "time" (ms, wrapping)."""
        cdef Tables tables = self._require_tables()
        cdef View* t = tables.view()
        cdef uint64_t tail = jool_load64(&t.h.ev_tail)
        cdef uint64_t head = jool_load64(&t.h.ev_head)
        cdef Event* ev
        kinds = {EV_CREATED: "created", EV_UPDATED: "updated", EV_REMOVED: "removed",
                 EV_BIB_CREATED: "bib-created", EV_BIB_REMOVED: "bib-removed"}
        out = []
        while tail < head and (limit < 0 or len(out) < limit):
            ev = &t.ev[tail % t.h.event_cap]
            if ev.kind == EV_BIB_CREATED or ev.kind == EV_BIB_REMOVED:
                view = dict(src6=str(ipaddress.IPv6Address(bytes(ev.s.src6[:16]))),
                            sport6=ev.s.sport6,
                            src4=str(ipaddress.IPv4Address(bytes(ev.s.src4[:4]))),
                            sport4=ev.s.port4, proto=PROTO_NAMES.get(ev.s.proto, "?"),
                            static=bool(ev.s.flags & B_STATIC))
            else:
                record = dict(src6=bytes(ev.s.src6[:16]), sport6=ev.s.sport6,
                              dst4=bytes(ev.s.dst4[:4]), dport=ev.s.dport,
                              src4=bytes(ev.s.src4[:4]), port4=ev.s.port4, proto=ev.s.proto,
                              state=ev.s.state, timer=ev.s.timer, last=ev.s.last)
                view = self._session_view(record, ev.time)
            view["time"] = ev.time
            out.append((kinds.get(ev.kind, "unknown"), view))
            tail += 1
        jool_store64(&t.h.ev_tail, tail)
        return out

    def skip_events(self):
        """Forgets every event not drained yet (when logging is switched on, what
        happened before is not logged)."""
        cdef Tables tables = self._require_tables()
        cdef View* t = tables.view()
        jool_store64(&t.h.ev_tail, jool_load64(&t.h.ev_head))


def _pack_ranges(rows):
    """[(int address, min, max, before)] as an array of Pool4Range structs."""
    cdef cnp.uint8_t[::1] raw
    cdef Pool4Range* r
    arr = np.zeros(max(len(rows), 1) * sizeof(Pool4Range), dtype=np.uint8)
    raw = arr
    r = <Pool4Range*>&raw[0]
    for i, (addr, lo, hi, before) in enumerate(rows):
        r[i].addr[0] = (addr >> 24) & 0xff
        r[i].addr[1] = (addr >> 16) & 0xff
        r[i].addr[2] = (addr >> 8) & 0xff
        r[i].addr[3] = addr & 0xff
        r[i].min = lo
        r[i].max = hi
        r[i].before = before
    return arr
