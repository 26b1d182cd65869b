"""Parsing and validation: the first half of RFC 6146 §3.4 "determining the
incoming tuple". Reports what a packet is; the pipeline decides what to do.

Outer packets must be whole: a length field that claims more than the frame holds
is SKB_TRUNCATED. Inner packets (quoted by ICMP errors) may be cut short: `end`
then stops at the last byte present, and only the first 8 transport bytes are
required (RFC 792 routers quote no more).
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from jool._fast.wire cimport rd8, rd16, rd32, jool_bounds_violations
from jool._fast.checksum cimport sum_bytes
from jool._fast.counters cimport *
from jool._fast.packet cimport *

cdef enum:
    MAX_EXT_HEADERS = 8
    IPV4_OPT_EOL = 0
    IPV4_OPT_NOP = 1
    IPV4_OPT_LSRR = 131
    IPV4_OPT_SSRR = 137


def bounds_violations():
    return jool_bounds_violations


cdef int parse_l4(const uint8_t* p, uint32_t cap, IPInfo* info, bint inner,
                  int bad_header) noexcept nogil:
    """Transport header of an unfragmented packet or first fragment."""
    cdef uint32_t room = info.end - info.l4
    cdef uint32_t l4 = info.l4
    cdef uint32_t doff, ulen
    if info.proto == PROTO_TCP:
        if room < (8 if inner else 20):
            return drop(JSTAT_SKB_TRUNCATED)
        if not inner:
            doff = (rd8(p, cap, l4 + 12) >> 4) * 4
            if doff < 20:
                return drop(bad_header)
            if doff > room:
                return drop(JSTAT_SKB_TRUNCATED)
        info.sport = rd16(p, cap, l4)
        info.dport = rd16(p, cap, l4 + 2)
    elif info.proto == PROTO_UDP:
        if room < 8:
            return drop(JSTAT_SKB_TRUNCATED)
        if not inner and not info.fragmented:
            ulen = rd16(p, cap, l4 + 4)
            if ulen < 8:
                return drop(bad_header)
            if ulen > room:
                return drop(JSTAT_SKB_TRUNCATED)
        info.sport = rd16(p, cap, l4)
        info.dport = rd16(p, cap, l4 + 2)
    else:  # ICMP / ICMPv6: type, code, checksum, then 4 bytes (identifier for queries)
        if room < 8:
            return drop(JSTAT_SKB_TRUNCATED)
        info.icmp_type = rd8(p, cap, l4)
        info.icmp_code = rd8(p, cap, l4 + 1)
        info.sport = rd16(p, cap, l4 + 4)
        info.dport = info.sport
    return 0


cdef int parse_ipv6(const uint8_t* p, uint32_t cap, uint32_t start, uint32_t avail,
                    bint inner, IPInfo* info) noexcept nogil:
    cdef uint32_t plen, off, hlen, fo
    cdef uint8_t nh
    cdef int count = 0
    info.start = start
    info.version = 6
    info.fragment = False
    info.fragmented = False
    info.first = True
    info.mf = False
    info.df = False
    info.frag_offset = 0
    info.frag_id = 0
    info.frag_hdr = 0
    info.segments_left_at = 0
    info.ext_after_frag = False
    info.source_route = False
    info.sport = 0
    info.dport = 0
    info.icmp_type = 0
    info.icmp_code = 0
    if avail < 40:
        return drop(JSTAT_SKB_TRUNCATED)
    if (rd8(p, cap, start) >> 4) != 6:
        return drop(JSTAT_HDR6)
    plen = rd16(p, cap, start + 4)
    if plen == 0:           # jumbogram (RFC 2675) or garbage: not translatable to IPv4
        return drop(JSTAT_HDR6)
    info.total = 40 + plen
    if info.total > avail:
        if not inner:
            return drop(JSTAT_SKB_TRUNCATED)
        info.end = start + avail
    else:
        info.end = start + info.total
    info.tos = <uint8_t>((rd16(p, cap, start) >> 4) & 0xff)
    info.ttl = rd8(p, cap, start + 7)
    nh = rd8(p, cap, start + 6)
    off = start + 40
    while True:
        if nh == PROTO_HOPOPT or nh == PROTO_ROUTING or nh == PROTO_DSTOPTS:
            if info.frag_hdr != 0:
                # RFC 7915 §5.1 leaves these unparseable after a fragment header.
                info.ext_after_frag = True
                break
            if nh == PROTO_HOPOPT and off != start + 40:
                return drop(JSTAT_HDR6)     # RFC 8200 §4.1: hop-by-hop comes first
            if off + 8 > info.end:
                return drop(JSTAT_SKB_TRUNCATED)
            hlen = (<uint32_t>rd8(p, cap, off + 1) + 1) * 8
            if off + hlen > info.end:
                return drop(JSTAT_SKB_TRUNCATED)
            if nh == PROTO_ROUTING and rd8(p, cap, off + 3) != 0 \
                    and info.segments_left_at == 0:
                info.segments_left_at = off + 3 - start
            nh = rd8(p, cap, off)
            off += hlen
        elif nh == PROTO_FRAGMENT:
            if info.frag_hdr != 0:
                return drop(JSTAT64_2XFRAG)
            if off + 8 > info.end:
                return drop(JSTAT_SKB_TRUNCATED)
            info.frag_hdr = off
            info.fragment = True
            fo = rd16(p, cap, off + 2)
            info.frag_offset = fo >> 3
            info.mf = (fo & 1) != 0
            info.frag_id = rd32(p, cap, off + 4)
            info.fragmented = info.mf or info.frag_offset != 0
            nh = rd8(p, cap, off)
            off += 8
            if info.frag_offset != 0:
                info.first = False
                if nh == PROTO_HOPOPT or nh == PROTO_ROUTING or nh == PROTO_DSTOPTS:
                    info.ext_after_frag = True
                break
        else:
            break
        count += 1
        if count > MAX_EXT_HEADERS:
            return drop(JSTAT_HDR6)
    info.proto = nh
    info.l4 = off
    if not info.first or info.ext_after_frag:
        return 0
    if nh == PROTO_TCP or nh == PROTO_UDP or nh == PROTO_ICMPV6:
        return parse_l4(p, cap, info, inner, JSTAT_HDR6)
    return 0


cdef int parse_ipv4(const uint8_t* p, uint32_t cap, uint32_t start, uint32_t avail,
                    bint inner, IPInfo* info) noexcept nogil:
    cdef uint32_t hlen, off, opt_end, olen
    cdef uint16_t fo
    cdef uint8_t t
    info.start = start
    info.version = 4
    info.frag_hdr = 0
    info.segments_left_at = 0
    info.ext_after_frag = False
    info.source_route = False
    info.sport = 0
    info.dport = 0
    info.icmp_type = 0
    info.icmp_code = 0
    if avail < 20:
        return drop(JSTAT_SKB_TRUNCATED)
    t = rd8(p, cap, start)
    if (t >> 4) != 4 or (t & 0xf) < 5:
        return drop(JSTAT_HDR4)
    hlen = (t & 0xf) * 4
    if hlen > avail:
        return drop(JSTAT_SKB_TRUNCATED)
    info.total = rd16(p, cap, start + 2)
    if info.total < hlen:
        return drop(JSTAT_HDR4)
    if info.total > avail:
        if not inner:
            return drop(JSTAT_SKB_TRUNCATED)
        info.end = start + avail
    else:
        info.end = start + info.total
    if not inner and sum_bytes(p, cap, start, hlen) != 0xffff:
        return drop(JSTAT_HDR4)     # the kernel's ip_rcv would have dropped it too
    info.tos = rd8(p, cap, start + 1)
    info.ttl = rd8(p, cap, start + 8)
    info.proto = rd8(p, cap, start + 9)
    info.frag_id = rd16(p, cap, start + 4)
    fo = rd16(p, cap, start + 6)
    info.df = (fo & 0x4000) != 0
    info.mf = (fo & 0x2000) != 0
    info.frag_offset = fo & 0x1fff
    info.fragment = info.mf or info.frag_offset != 0
    info.fragmented = info.fragment
    info.first = info.frag_offset == 0
    info.l4 = start + hlen
    if not inner:
        # RFC 791 options; only an unexpired source route matters (RFC 7915 §4.1).
        off = start + 20
        opt_end = start + hlen
        while off < opt_end:
            t = rd8(p, cap, off)
            if t == IPV4_OPT_EOL:
                break
            if t == IPV4_OPT_NOP:
                off += 1
                continue
            if off + 1 >= opt_end:
                return drop(JSTAT_HDR4)
            olen = rd8(p, cap, off + 1)
            if olen < 2 or off + olen > opt_end:
                return drop(JSTAT_HDR4)
            if t == IPV4_OPT_LSRR or t == IPV4_OPT_SSRR:
                if olen < 3:
                    return drop(JSTAT_HDR4)
                if rd8(p, cap, off + 2) <= olen:
                    info.source_route = True
            off += olen
    if not info.first:
        return 0
    if info.proto == PROTO_TCP or info.proto == PROTO_UDP or info.proto == PROTO_ICMP:
        return parse_l4(p, cap, info, inner, JSTAT_HDR4)
    return 0
