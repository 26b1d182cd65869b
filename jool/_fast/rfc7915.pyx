"""RFC 7915 header translation: step 4 of RFC 6146 §3 ("translating the packet").

Each function writes its output into the arena `Out` and returns 0 or a verdict
code (packet.pxd). Nothing is committed to the arena unless the whole output was
written, so a drop never leaves half a packet behind.

Checksums of TCP, UDP and ICMP queries are updated incrementally (RFC 1624) from
the words that change: a wrong checksum stays wrong, as in Jool. A partial
checksum (the frame's field holds only the pseudo-header sum) and a zero IPv4 UDP
checksum are computed in full. ICMP errors are verified, then recomputed in full.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from jool._fast.wire cimport rd8, rd16, rd32, wr8, wr16, wr32, copy, zero, jool_bounds_violations
from jool._fast.checksum cimport sum_bytes, add, sub, finish, update, fold
from jool._fast.counters cimport *
from jool._fast.packet cimport *
from jool._fast.rfc6052 cimport Prefix6, prefix6_contains, rfc6052_embed, rfc6052_extract
from jool._fast.icmp_map cimport *
from jool._fast.parse cimport parse_ipv6, parse_ipv4

cdef enum:
    ICMP4_ERROR_MAX = 576       # RFC 1812 §4.3.2.3: ICMPv4 errors fit in 576 bytes
    ICMP6_ERROR_MAX = 1280      # RFC 4443 §2.4(c): ICMPv6 errors fit in the minimum MTU
    IPV6_MIN_MTU = 1280
    DF_THRESHOLD = 1260         # spec §11: unfragmented 6->4 output gets DF iff longer
    RFC4884_MIN_ORIGINAL = 128  # RFC 4884 §4: original datagram field with extensions
    GENERATED_TTL = 64


def bounds_violations():
    return jool_bounds_violations


# ---------------------------------------------------------------- arena

cdef inline uint8_t* reserve(Out* o, uint32_t need, uint32_t records) noexcept nogil:
    if o.n + records > o.max_n or need > o.cap - o.used:
        return NULL
    return o.buf + o.used


cdef inline void commit(Out* o, uint32_t length, uint8_t kind) noexcept nogil:
    o.rec_off[o.n] = o.used
    o.rec_len[o.n] = length
    o.rec_input[o.n] = o.input_index
    o.rec_kind[o.n] = kind
    if o.rec_gso != NULL:
        o.rec_gso[o.n] = 0
    o.n += 1
    o.used += length


# ---------------------------------------------------------------- header writers

cdef inline void put_ipv4(uint8_t* w, uint32_t wcap, uint32_t total, uint8_t tos,
                          uint16_t ident, uint16_t frag_field, uint8_t ttl, uint8_t proto,
                          const uint8_t* src, const uint8_t* dst) noexcept nogil:
    wr8(w, wcap, 0, 0x45)
    wr8(w, wcap, 1, tos)
    wr16(w, wcap, 2, <uint16_t>total)
    wr16(w, wcap, 4, ident)
    wr16(w, wcap, 6, frag_field)
    wr8(w, wcap, 8, ttl)
    wr8(w, wcap, 9, proto)
    wr16(w, wcap, 10, 0)
    copy(w, wcap, 12, src, 4, 0, 4)
    copy(w, wcap, 16, dst, 4, 0, 4)
    wr16(w, wcap, 10, finish(sum_bytes(w, wcap, 0, 20)))


cdef inline void put_ipv6(uint8_t* w, uint32_t wcap, uint8_t tclass, uint32_t plen,
                          uint8_t nh, uint8_t hop_limit,
                          const uint8_t* src, const uint8_t* dst) noexcept nogil:
    # RFC 7915 §4.1: flow label 0.
    wr32(w, wcap, 0, (<uint32_t>6 << 28) | (<uint32_t>tclass << 20))
    wr16(w, wcap, 4, <uint16_t>plen)
    wr8(w, wcap, 6, nh)
    wr8(w, wcap, 7, hop_limit)
    copy(w, wcap, 8, src, 16, 0, 16)
    copy(w, wcap, 24, dst, 16, 0, 16)


cdef inline void put_frag_header(uint8_t* w, uint32_t wcap, uint32_t at, uint8_t nh,
                                 uint32_t offset_bytes, bint more, uint32_t ident) noexcept nogil:
    wr8(w, wcap, at, nh)
    wr8(w, wcap, at + 1, 0)
    wr16(w, wcap, at + 2, <uint16_t>((offset_bytes & 0xfff8) | (1 if more else 0)))
    wr32(w, wcap, at + 4, ident)


cdef inline uint16_t addr_sum(const uint8_t* a, uint32_t n) noexcept nogil:
    return sum_bytes(a, n, 0, n)


cdef inline uint16_t pseudo_rest(uint32_t length, uint8_t proto) noexcept nogil:
    # Length and protocol words of a pseudo-header; the same sum for IPv4 and IPv6.
    return add(fold(length), proto)


cdef inline uint8_t tos_6to4(const XlatConfig* cfg, uint8_t tclass) noexcept nogil:
    return cfg.tos if cfg.override_tos else tclass           # RFC 7915 §5.1


cdef inline uint8_t tclass_4to6(const XlatConfig* cfg, uint8_t tos) noexcept nogil:
    return 0 if cfg.zeroize_traffic_class else tos            # RFC 7915 §4.1


cdef inline uint16_t frag_field_6to4(const IPInfo* in6, uint32_t total4) noexcept nogil:
    # RFC 7915 §5.1 and spec §11: a fragment header means DF=0 with MF/offset copied;
    # otherwise DF=1 iff the IPv4 packet is longer than 1260 bytes.
    if in6.fragment:
        return (0x2000 if in6.mf else 0) | (in6.frag_offset & 0x1fff)
    return 0x4000 if total4 > DF_THRESHOLD else 0


cdef inline uint8_t proto_6to4(uint8_t proto) noexcept nogil:
    return PROTO_ICMP if proto == PROTO_ICMPV6 else proto


cdef inline uint8_t proto_4to6(uint8_t proto) noexcept nogil:
    return PROTO_ICMPV6 if proto == PROTO_ICMP else proto


cdef inline void load(uint8_t* dst, uint32_t n, const uint8_t* p, uint32_t cap, uint32_t off) noexcept nogil:
    copy(dst, n, 0, p, cap, off, n)


# ---------------------------------------------------------------- transport rewrite

cdef struct L4Patch:
    uint16_t port_at        # offset in the transport header of the rewritten port/id
    uint16_t port
    bint has_csum           # the checksum field is present (a quoted packet may be cut)
    uint16_t csum_at
    uint16_t csum
    bint set_type
    uint8_t type


cdef inline void apply_patch(uint8_t* w, uint32_t wcap, uint32_t l4o, uint32_t present,
                             const L4Patch* pt) noexcept nogil:
    if pt.set_type:
        wr8(w, wcap, l4o, pt.type)
    if pt.port_at + 2 <= present:
        wr16(w, wcap, l4o + pt.port_at, pt.port)
    if pt.has_csum:
        wr16(w, wcap, l4o + pt.csum_at, pt.csum)


cdef int patch_tcp_udp(const uint8_t* p, uint32_t cap, const IPInfo* info, bint inner,
                       uint16_t old_addrs, uint16_t new_addrs, bint source_port,
                       uint16_t new_port, bint partial, int zero_csum_counter,
                       L4Patch* pt) noexcept nogil:
    """New port and checksum of a TCP or UDP header whose pseudo-header addresses
    change from old_addrs to new_addrs (sums)."""
    cdef uint32_t present = info.end - info.l4
    cdef uint16_t old_port = info.sport if source_port else info.dport
    cdef uint16_t old_check, s
    cdef bint udp = info.proto == PROTO_UDP
    pt.set_type = False
    pt.port_at = 0 if source_port else 2
    pt.port = new_port
    pt.csum_at = 6 if udp else 16
    pt.has_csum = present >= <uint32_t>pt.csum_at + 2
    if not pt.has_csum:
        return 0
    old_check = rd16(p, cap, info.l4 + pt.csum_at)
    if udp and old_check == 0:
        if inner:
            pt.csum = 0             # a quoted datagram keeps what it had
            return 0
        if info.fragmented:
            return drop(zero_csum_counter)  # the rest of the datagram is not here
        partial = True
    if partial and not inner and not info.fragmented:
        # Full computation from the input bytes: drop the old field and port words.
        s = sum_bytes(p, cap, info.l4, present)
        s = sub(s, old_check)
        s = sub(s, old_port)
        s = add(s, new_port)
        s = add(s, add(new_addrs, pseudo_rest(present, info.proto)))
        pt.csum = finish(s)
    else:
        pt.csum = update(old_check, add(old_addrs, old_port), add(new_addrs, new_port))
    if udp and pt.csum == 0:
        pt.csum = 0xffff            # RFC 768: a computed zero is sent as all ones
    return 0


cdef void patch_echo(const uint8_t* p, uint32_t cap, const IPInfo* info,
                     uint16_t old_extra, uint16_t new_extra, uint8_t new_type,
                     uint16_t new_id, L4Patch* pt) noexcept nogil:
    """ICMP query: type and identifier change; old_extra/new_extra carry the ICMPv6
    pseudo-header sum on the side that has one (RFC 7915 §4.2, §5.2)."""
    cdef uint32_t present = info.end - info.l4
    cdef uint16_t old_check = rd16(p, cap, info.l4 + 2)
    cdef uint16_t old_words = add(add(old_extra, (<uint16_t>info.icmp_type << 8) | info.icmp_code), info.sport)
    cdef uint16_t new_words = add(add(new_extra, (<uint16_t>new_type << 8) | info.icmp_code), new_id)
    pt.set_type = True
    pt.type = new_type
    pt.port_at = 4
    pt.port = new_id
    pt.csum_at = 2
    pt.has_csum = present >= 4
    pt.csum = update(old_check, old_words, new_words)




cdef int patch_6to4(const uint8_t* p, uint32_t cap, const IPInfo* in6, const Mapping* m,
                    const uint8_t* src6, const uint8_t* dst6, const uint8_t* dst4,
                    uint32_t l4len, bint partial, L4Patch* pt) noexcept nogil:
    """The transport header's new port/identifier, type and checksum, 6->4."""
    cdef uint8_t t4 = 0, c4 = 0
    cdef int rc
    if in6.proto == PROTO_ICMPV6:
        rc = map_icmp6_to_4(in6.icmp_type, in6.icmp_code, &t4, &c4)
        if rc:
            return rc
        patch_echo(p, cap, in6, pseudo6(src6, dst6, l4len, PROTO_ICMPV6), 0, t4, m.port, pt)
        return 0
    return patch_tcp_udp(p, cap, in6, False, add(addr_sum(src6, 16), addr_sum(dst6, 16)),
                         add(addr_sum(m.addr, 4), addr_sum(dst4, 4)), True, m.port,
                         partial, JSTAT_HDR6, pt)

# ---------------------------------------------------------------- super-frames

cdef enum:
    TCP_FIN_PSH = 0x09
    TCP_CWR = 0x80


cdef int segment_tcp(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* info, bint to4,
                     const uint8_t* src, const uint8_t* dst, uint16_t new_port,
                     uint8_t tos_or_tc, uint8_t ttl, uint32_t mtu, Out* o) noexcept nogil:
    """A TCP frame longer than its link's MTU is a GSO/GRO aggregate the kernel
    never cut up (DESIGN.md: veth hands them over whole). Translated as one, it
    would exceed the other side's MTU: emit it as MTU-sized segments instead, as
    TSO would have, each with a full checksum. The headers are translated once."""
    cdef uint32_t thl = (rd8(p, cap, info.l4 + 12) >> 4) * 4
    cdef uint32_t iphl = 20 if to4 else 40
    cdef uint32_t payload = info.end - info.l4 - thl
    cdef uint32_t mss, nseg, need, pos, n, total, wcap, seq0
    cdef uint8_t flags0, flags
    cdef uint8_t* w
    cdef uint16_t csum
    if thl < 20 or mtu <= iphl + thl + 8:
        return drop(JSTAT_PKT_TOO_BIG)
    mss = mtu - iphl - thl
    nseg = (payload + mss - 1) // mss
    need = payload + nseg * (iphl + thl)
    if o.n + nseg > o.max_n or need > o.cap - o.used:
        return no_space()
    seq0 = rd32(p, cap, info.l4 + 4)
    flags0 = rd8(p, cap, info.l4 + 13)
    pos = 0
    while pos < payload:
        n = payload - pos if payload - pos < mss else mss
        total = iphl + thl + n
        w = o.buf + o.used
        wcap = o.cap - o.used
        if to4:
            put_ipv4(w, wcap, total, tos_or_tc, <uint16_t>ctx.next_ip_id,
                     0x4000 if total > DF_THRESHOLD else 0, ttl, PROTO_TCP, src, dst)
            ctx.next_ip_id += 1
        else:
            put_ipv6(w, wcap, tos_or_tc, thl + n, PROTO_TCP, ttl, src, dst)
        copy(w, wcap, iphl, p, cap, info.l4, thl)
        copy(w, wcap, iphl + thl, p, cap, info.l4 + thl + pos, n)
        if to4:
            wr16(w, wcap, iphl, new_port)               # the source port (6->4)
        else:
            wr16(w, wcap, iphl + 2, new_port)           # the destination port (4->6)
        wr32(w, wcap, iphl + 4, seq0 + pos)
        flags = flags0
        if pos + n < payload:
            flags &= ~TCP_FIN_PSH
        if pos > 0:
            flags &= ~TCP_CWR
        wr8(w, wcap, iphl + 13, flags)
        wr16(w, wcap, iphl + 16, 0)
        csum = add(sum_bytes(w, wcap, iphl, thl + n),
                   add(add(addr_sum(src, 4 if to4 else 16), addr_sum(dst, 4 if to4 else 16)),
                       pseudo_rest(thl + n, PROTO_TCP)))
        wr16(w, wcap, iphl + 16, finish(csum))
        commit(o, total, OUT_IPV4 if to4 else OUT_IPV6)
        pos += n
    return 0

cdef int gso_tcp(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* info, bint to4,
                 const uint8_t* src, const uint8_t* dst, uint16_t new_port,
                 uint8_t tos_or_tc, uint8_t ttl, uint32_t mtu, Out* o) noexcept nogil:
    """A TCP super-frame (GSO/GRO) translated once and handed on whole, for the
    kernel to cut into segments of at most ctx.gso_size bytes (fewer when the
    other side's MTU needs it): one copy, no checksum over the payload. The TCP
    checksum field carries the new pseudo-header sum, as CHECKSUM_PARTIAL wants."""
    cdef uint32_t thl = (rd8(p, cap, info.l4 + 12) >> 4) * 4
    cdef uint32_t iphl = 20 if to4 else 40
    cdef uint32_t payload = info.end - info.l4 - thl
    cdef uint32_t total = iphl + thl + payload
    cdef uint32_t mss = ctx.gso_size, nseg, wcap
    cdef uint8_t* w
    if thl < 20 or mtu <= iphl + thl + 8:
        return drop(JSTAT_PKT_TOO_BIG)
    if mss > mtu - iphl - thl:
        mss = mtu - iphl - thl
    if (to4 and total > 0xffff) or (not to4 and thl + payload > 0xffff):
        return segment_tcp(ctx, p, cap, info, to4, src, dst, new_port, tos_or_tc, ttl, mtu, o)
    if o.n + 1 > o.max_n or total > o.cap - o.used:
        return no_space()
    nseg = (payload + mss - 1) // mss
    w = o.buf + o.used
    wcap = o.cap - o.used
    if to4:
        put_ipv4(w, wcap, total, tos_or_tc, <uint16_t>ctx.next_ip_id, 0x4000, ttl, PROTO_TCP,
                 src, dst)
        ctx.next_ip_id += nseg          # the segments take consecutive identifications
    else:
        put_ipv6(w, wcap, tos_or_tc, thl + payload, PROTO_TCP, ttl, src, dst)
    copy(w, wcap, iphl, p, cap, info.l4, thl + payload)
    if to4:
        wr16(w, wcap, iphl, new_port)
    else:
        wr16(w, wcap, iphl + 2, new_port)
    wr16(w, wcap, iphl + 16, add(add(addr_sum(src, 4 if to4 else 16),
                                     addr_sum(dst, 4 if to4 else 16)),
                                 pseudo_rest(thl + payload, PROTO_TCP)))
    commit(o, total, (OUT_IPV4 if to4 else OUT_IPV6) | OUT_GSO)
    o.rec_gso[o.n - 1] = <uint16_t>mss
    return 0


cdef inline bint gso_possible(Ctx* ctx, Out* o) noexcept nogil:
    return ctx.gso_size != 0 and o.rec_gso != NULL


# ---------------------------------------------------------------- 6 -> 4

cdef int translate_6to4(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in6,
                        const Mapping* m, bint partial, Out* o) noexcept nogil:
    """RFC 7915 §5.1 for a packet that is not an ICMPv6 error."""
    cdef const XlatConfig* cfg = ctx.cfg
    cdef uint8_t src6[16]
    cdef uint8_t dst6[16]
    cdef uint8_t dst4[4]
    cdef uint32_t l4len = in6.end - in6.l4
    cdef uint32_t total = 20 + l4len
    cdef uint32_t wcap, mtu
    cdef uint8_t* w
    cdef int rc
    cdef L4Patch pt
    if in6.ttl <= 1:
        rc = emit_icmp6_error(ctx, p, cap, in6, ICMP6_TIME_EXCEEDED, 0, 0, o)
        return rc if rc else drop_icmp(JSTAT64_TTL)
    if in6.proto == PROTO_TCP and not in6.fragmented and in6.total > cfg.mtu6_in \
            and total > cfg.mtu4_out:
        load(dst6, 16, p, cap, in6.start + 24)
        rfc6052_extract(&cfg.pool6, dst6, dst4)
        if gso_possible(ctx, o):
            return gso_tcp(ctx, p, cap, in6, True, m.addr, dst4, m.port,
                           tos_6to4(cfg, in6.tos), in6.ttl - 1, cfg.mtu4_out, o)
        return segment_tcp(ctx, p, cap, in6, True, m.addr, dst4, m.port,
                           tos_6to4(cfg, in6.tos), in6.ttl - 1, cfg.mtu4_out, o)
    if ctx.reassembled and total > cfg.mtu4_out:
        # It came as IPv6 fragments, so its translation has DF=0 (RFC 7915 §5.1):
        # fragment it for the IPv4 next hop as the kernel would have for Jool.
        return fragment_6to4(ctx, p, cap, in6, m, partial, o)
    if total > cfg.mtu4_out:
        if not in6.first:
            return drop(JSTAT_PKT_TOO_BIG)
        mtu = cfg.mtu4_out + 20
        rc = emit_icmp6_error(ctx, p, cap, in6, ICMP6_PKT_TOO_BIG, 0,
                              mtu if mtu > IPV6_MIN_MTU else IPV6_MIN_MTU, o)
        return rc if rc else drop_icmp(JSTAT_PKT_TOO_BIG)
    load(src6, 16, p, cap, in6.start + 8)
    load(dst6, 16, p, cap, in6.start + 24)
    rfc6052_extract(&cfg.pool6, dst6, dst4)
    pt.set_type = False
    pt.has_csum = False
    pt.port_at = 0xffff
    if in6.first:
        rc = patch_6to4(p, cap, in6, m, src6, dst6, dst4, l4len, partial, &pt)
        if rc:
            return rc
    w = reserve(o, total, 1)
    if w == NULL:
        return no_space()
    wcap = o.cap - o.used
    put_ipv4(w, wcap, total, tos_6to4(cfg, in6.tos),
             <uint16_t>(in6.frag_id if in6.fragment else ctx.next_ip_id),
             frag_field_6to4(in6, total), in6.ttl - 1, proto_6to4(in6.proto), m.addr, dst4)
    copy(w, wcap, 20, p, cap, in6.l4, l4len)
    if in6.first:
        apply_patch(w, wcap, 20, l4len, &pt)
    if not in6.fragment:
        ctx.next_ip_id += 1
    commit(o, total, OUT_IPV4)
    return 0


cdef inline uint16_t pseudo6(const uint8_t* src, const uint8_t* dst, uint32_t length,
                             uint8_t nh) noexcept nogil:
    return add(add(addr_sum(src, 16), addr_sum(dst, 16)), pseudo_rest(length, nh))



cdef int fragment_6to4(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in6,
                       const Mapping* m, bint partial, Out* o) noexcept nogil:
    """A reassembled IPv6 datagram translated into IPv4 fragments (DF=0, one ID)."""
    cdef const XlatConfig* cfg = ctx.cfg
    cdef uint8_t src6[16]
    cdef uint8_t dst6[16]
    cdef uint8_t dst4[4]
    cdef uint32_t l4len = in6.end - in6.l4
    cdef uint32_t chunk = ((cfg.mtu4_out - 20) // 8) * 8
    cdef uint32_t nfrag, need, pos, n, wcap
    cdef uint16_t ident = <uint16_t>ctx.next_ip_id
    cdef uint8_t* w
    cdef int rc
    cdef L4Patch pt
    if in6.ttl <= 1:
        rc = emit_icmp6_error(ctx, p, cap, in6, ICMP6_TIME_EXCEEDED, 0, 0, o)
        return rc if rc else drop_icmp(JSTAT64_TTL)
    if chunk < 8:
        return drop(JSTAT_PKT_TOO_BIG)
    load(src6, 16, p, cap, in6.start + 8)
    load(dst6, 16, p, cap, in6.start + 24)
    rfc6052_extract(&cfg.pool6, dst6, dst4)
    rc = patch_6to4(p, cap, in6, m, src6, dst6, dst4, l4len, partial, &pt)
    if rc:
        return rc
    nfrag = (l4len + chunk - 1) // chunk
    need = l4len + 20 * nfrag
    if o.n + nfrag > o.max_n or need > o.cap - o.used:
        return no_space()
    pos = 0
    while pos < l4len:
        n = l4len - pos if l4len - pos < chunk else chunk
        w = o.buf + o.used
        wcap = o.cap - o.used
        put_ipv4(w, wcap, 20 + n, tos_6to4(cfg, in6.tos), ident,
                 (0x2000 if pos + n < l4len else 0) | ((pos >> 3) & 0x1fff),
                 in6.ttl - 1, proto_6to4(in6.proto), m.addr, dst4)
        copy(w, wcap, 20, p, cap, in6.l4 + pos, n)
        if pos == 0:
            apply_patch(w, wcap, 20, n, &pt)
        commit(o, 20 + n, OUT_IPV4)
        pos += n
    ctx.next_ip_id += 1
    return 0

# ---------------------------------------------------------------- 4 -> 6

cdef int translate_4to6(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in4,
                        const Mapping* m, bint partial, Out* o) noexcept nogil:
    """RFC 7915 §4.1 for a packet that is not an ICMPv4 error; fragments to
    min(next-hop MTU, lowest-ipv6-mtu) when DF is clear (spec §11)."""
    cdef const XlatConfig* cfg = ctx.cfg
    cdef uint8_t src4[4]
    cdef uint8_t dst4[4]
    cdef uint8_t src6[16]
    cdef uint32_t l4len = in4.end - in4.l4
    cdef uint32_t fh = 8 if in4.fragment else 0
    cdef uint32_t total = 40 + fh + l4len
    cdef uint32_t limit, chunk, nfrag, need, pos, n, wcap, mtu
    cdef uint8_t* w
    cdef uint8_t t6 = 0, c6 = 0
    cdef uint8_t nh = proto_4to6(in4.proto)
    cdef uint8_t tclass = tclass_4to6(cfg, in4.tos)
    cdef uint32_t pointer = 0
    cdef int rc
    cdef L4Patch pt
    cdef uint8_t ttl = in4.ttl if ctx.hairpin else in4.ttl - 1
    if in4.ttl <= 1 and not ctx.hairpin:
        rc = emit_icmp4_error(ctx, p, cap, in4, ICMP4_TIME_EXCEEDED, 0, 0, o)
        return rc if rc else drop_icmp(JSTAT46_TTL)
    # DF: a TSO aggregate carries it; a DF=0 packet over the link MTU is one the
    # kernel reassembled, and is fragmented again below (spec §11).
    if in4.proto == PROTO_TCP and in4.df and not in4.fragmented and in4.total > cfg.mtu4_in \
            and total > cfg.mtu6_out:
        load(src4, 4, p, cap, in4.start + 12)
        rfc6052_embed(&cfg.pool6, src4, src6)
        if gso_possible(ctx, o):
            return gso_tcp(ctx, p, cap, in4, False, src6, m.addr, m.port,
                           tclass_4to6(cfg, in4.tos), ttl, cfg.mtu6_out, o)
        return segment_tcp(ctx, p, cap, in4, False, src6, m.addr, m.port,
                           tclass_4to6(cfg, in4.tos), ttl, cfg.mtu6_out, o)
    if in4.df:
        if total > cfg.mtu6_out:
            if not in4.first:
                return drop(JSTAT_PKT_TOO_BIG)
            mtu = cfg.mtu6_out - 20 if cfg.mtu6_out > 20 else 0
            rc = emit_icmp4_error(ctx, p, cap, in4, ICMP4_DEST_UNREACH, 4,
                                  mtu if mtu > ICMP4_ERROR_MAX else ICMP4_ERROR_MAX, o)
            return rc if rc else drop_icmp(JSTAT_PKT_TOO_BIG)
        limit = total
    else:
        limit = cfg.mtu6_out if cfg.mtu6_out < cfg.lowest_ipv6_mtu else cfg.lowest_ipv6_mtu
        if limit < IPV6_MIN_MTU:
            return drop(JSTAT46_BAD_MTU)
    load(src4, 4, p, cap, in4.start + 12)
    load(dst4, 4, p, cap, in4.start + 16)
    rfc6052_embed(&cfg.pool6, src4, src6)
    pt.set_type = False
    pt.has_csum = False
    pt.port_at = 0xffff
    if in4.first:
        if in4.proto == PROTO_ICMP:
            rc = map_icmp4_to_6(in4.icmp_type, in4.icmp_code, &t6, &c6, &pointer)
            if rc:
                return rc
            patch_echo(p, cap, in4, 0, pseudo6(src6, m.addr, l4len, PROTO_ICMPV6), t6, m.port, &pt)
        else:
            rc = patch_tcp_udp(p, cap, in4, False,
                               add(addr_sum(src4, 4), addr_sum(dst4, 4)),
                               add(addr_sum(src6, 16), addr_sum(m.addr, 16)),
                               False, m.port, partial, JSTAT46_FRAGMENTED_ZERO_CSUM, &pt)
            if rc:
                return rc
    if total <= limit:
        w = reserve(o, total, 1)
        if w == NULL:
            return no_space()
        wcap = o.cap - o.used
        if in4.fragment:
            put_ipv6(w, wcap, tclass, 8 + l4len, PROTO_FRAGMENT, ttl, src6, m.addr)
            put_frag_header(w, wcap, 40, nh, <uint32_t>in4.frag_offset * 8, in4.mf, in4.frag_id)
        else:
            put_ipv6(w, wcap, tclass, l4len, nh, ttl, src6, m.addr)
        copy(w, wcap, 40 + fh, p, cap, in4.l4, l4len)
        if in4.first:
            apply_patch(w, wcap, 40 + fh, l4len, &pt)
        commit(o, total, OUT_IPV6)
        return 0
    # Fragment: every piece but the last carries a multiple of 8 bytes.
    chunk = ((limit - 48) // 8) * 8
    nfrag = (l4len + chunk - 1) // chunk
    need = l4len + 48 * nfrag
    if o.n + nfrag > o.max_n or need > o.cap - o.used:
        return no_space()
    pos = 0
    while pos < l4len:
        n = l4len - pos if l4len - pos < chunk else chunk
        w = o.buf + o.used
        wcap = o.cap - o.used
        put_ipv6(w, wcap, tclass, 8 + n, PROTO_FRAGMENT, ttl, src6, m.addr)
        put_frag_header(w, wcap, 40, nh, <uint32_t>in4.frag_offset * 8 + pos,
                        pos + n < l4len or in4.mf, in4.frag_id)
        copy(w, wcap, 48, p, cap, in4.l4 + pos, n)
        if pos == 0 and in4.first:
            apply_patch(w, wcap, 48, n, &pt)
        commit(o, 48 + n, OUT_IPV6)
        pos += n
    return 0


# ---------------------------------------------------------------- ICMP errors, 6 -> 4

cdef inline uint32_t round_up(uint32_t n, uint32_t unit) noexcept nogil:
    return (n + unit - 1) // unit * unit


cdef int translate_icmp6_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* out6,
                               const Mapping* m, Out* o) noexcept nogil:
    """RFC 7915 §5.2-5.3: an ICMPv6 error and the IPv6 packet it quotes."""
    cdef const XlatConfig* cfg = ctx.cfg
    cdef IPInfo inner
    cdef uint8_t osrc6[16]
    cdef uint8_t odst6[16]
    cdef uint8_t odst4[4]
    cdef uint8_t isrc6[16]
    cdef uint8_t idst6[16]
    cdef uint8_t isrc4[4]
    cdef uint32_t l4 = out6.l4
    cdef uint32_t msg_len = out6.end - l4
    cdef uint32_t inner_start = l4 + 8
    cdef uint32_t quoted = out6.end - inner_start      # bytes after the ICMP header
    cdef uint32_t original = quoted                    # the quoted datagram (RFC 4884)
    cdef uint32_t ext_len = 0, field, inner_len, inner_total, inner_l4len, copy_len
    cdef uint32_t total, wcap, rest = 0
    cdef uint8_t t4 = 0, c4 = 0, ptr4 = 0, length_words
    cdef uint8_t* w
    cdef int rc
    cdef L4Patch pt
    load(osrc6, 16, p, cap, out6.start + 8)
    load(odst6, 16, p, cap, out6.start + 24)
    if add(pseudo6(osrc6, odst6, msg_len, PROTO_ICMPV6), sum_bytes(p, cap, l4, msg_len)) != 0xffff:
        return drop(JSTAT64_ICMP_CSUM)
    rc = map_icmp6_to_4(out6.icmp_type, out6.icmp_code, &t4, &c4)
    if rc:
        return rc
    if out6.icmp_type == ICMP6_PKT_TOO_BIG:
        rest = mtu_6to4(cfg, rd32(p, cap, l4 + 4))
    elif out6.icmp_type == ICMP6_PARAM_PROB and out6.icmp_code == 0:
        rc = pointer_6to4(rd32(p, cap, l4 + 4), &ptr4)
        if rc:
            return rc
        rest = <uint32_t>ptr4 << 24
    if out6.icmp_type == ICMP6_DEST_UNREACH or out6.icmp_type == ICMP6_TIME_EXCEEDED:
        length_words = rd8(p, cap, l4 + 4)       # RFC 4884 §4.6: 64-bit words
        if length_words != 0:
            original = <uint32_t>length_words * 8
            if original > quoted:
                return drop(JSTAT_ICMPEXT_BIG)
            ext_len = quoted - original
    rc = parse_ipv6(p, cap, inner_start, original, True, &inner)
    if rc:
        return rc
    if inner.proto == PROTO_ICMPV6 and inner.first and icmp6_is_error(inner.icmp_type):
        return drop(JSTAT_DOUBLE_ICMP6_ERROR)
    if inner.proto != PROTO_TCP and inner.proto != PROTO_UDP and inner.proto != PROTO_ICMPV6:
        return pass_up(JSTAT_UNKNOWN_PROTO_INNER)
    if not inner.first or inner.ext_after_frag:
        return drop(JSTAT64_FRAGMENTED_ICMP)
    if out6.ttl <= 1:
        return drop(JSTAT64_TTL)        # no error about an error
    load(isrc6, 16, p, cap, inner.start + 8)
    load(idst6, 16, p, cap, inner.start + 24)
    if not prefix6_contains(&cfg.pool6, isrc6):
        return pass_up(JSTAT_UNTRANSLATABLE_DST6)
    rfc6052_extract(&cfg.pool6, isrc6, isrc4)
    rfc6052_extract(&cfg.pool6, odst6, odst4)
    inner_l4len = inner.end - inner.l4
    inner_total = 20 + (inner.total - (inner.l4 - inner.start))   # as the header claims
    # Quoted packet's transport rewrite: it went to the client (inner destination).
    if inner.proto == PROTO_ICMPV6:
        if inner.icmp_type != ICMP6_ECHO_REQUEST and inner.icmp_type != ICMP6_ECHO_REPLY:
            return drop(JSTAT_UNKNOWN_ICMP6_TYPE)
        patch_echo(p, cap, &inner,
                   pseudo6(isrc6, idst6, inner.total - (inner.l4 - inner.start), PROTO_ICMPV6), 0,
                   ICMP4_ECHO_REQUEST if inner.icmp_type == ICMP6_ECHO_REQUEST else ICMP4_ECHO_REPLY,
                   m.port, &pt)
    else:
        rc = patch_tcp_udp(p, cap, &inner, True,
                           add(addr_sum(isrc6, 16), addr_sum(idst6, 16)),
                           add(addr_sum(isrc4, 4), addr_sum(m.addr, 4)),
                           False, m.port, False, JSTAT_UNKNOWN, &pt)
        if rc:
            return rc
    # Sizes: the whole ICMPv4 error fits in 576 bytes.
    inner_len = 20 + inner_l4len
    if ext_len:
        field = round_up(inner_len, 4)
        if field < RFC4884_MIN_ORIGINAL:
            field = RFC4884_MIN_ORIGINAL
        if 28 + field + ext_len > ICMP4_ERROR_MAX:
            if ICMP4_ERROR_MAX < 28 + ext_len + 28:
                return drop(JSTAT_ICMPEXT_BIG)
            field = (ICMP4_ERROR_MAX - 28 - ext_len) // 4 * 4
        if inner_len > field:
            inner_len = field
        total = 28 + field + ext_len
    else:
        if 28 + inner_len > ICMP4_ERROR_MAX:
            inner_len = ICMP4_ERROR_MAX - 28
        field = inner_len
        total = 28 + inner_len
    copy_len = inner_len - 20
    w = reserve(o, total, 1)
    if w == NULL:
        return no_space()
    wcap = o.cap - o.used
    put_ipv4(w, wcap, total, tos_6to4(cfg, out6.tos), <uint16_t>ctx.next_ip_id,
             frag_field_6to4(out6, total), out6.ttl - 1, PROTO_ICMP, m.addr, odst4)
    wr8(w, wcap, 20, t4)
    wr8(w, wcap, 21, c4)
    wr16(w, wcap, 22, 0)
    wr32(w, wcap, 24, rest)
    if ext_len:
        wr8(w, wcap, 25, <uint8_t>(field // 4))     # RFC 4884: 32-bit words in ICMPv4
    put_ipv4(w + 28, wcap - 28, inner_total, tos_6to4(cfg, inner.tos),
             <uint16_t>(inner.frag_id if inner.fragment else 0),
             frag_field_6to4(&inner, inner_total), inner.ttl, proto_6to4(inner.proto),
             isrc4, m.addr)
    copy(w, wcap, 48, p, cap, inner.l4, copy_len)
    apply_patch(w, wcap, 48, copy_len, &pt)
    if field > inner_len:
        zero(w, wcap, 28 + inner_len, field - inner_len)
    if ext_len:
        copy(w, wcap, 28 + field, p, cap, inner_start + original, ext_len)
    wr16(w, wcap, 22, finish(sum_bytes(w, wcap, 20, total - 20)))
    ctx.next_ip_id += 1
    commit(o, total, OUT_IPV4)
    return 0


# ---------------------------------------------------------------- ICMP errors, 4 -> 6

cdef int translate_icmp4_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* out4,
                               const Mapping* m, Out* o) noexcept nogil:
    """RFC 7915 §4.2-4.3: an ICMPv4 error and the IPv4 packet it quotes."""
    cdef const XlatConfig* cfg = ctx.cfg
    cdef IPInfo inner
    cdef uint8_t osrc4[4]
    cdef uint8_t osrc6[16]
    cdef uint8_t isrc4[4]
    cdef uint8_t idst4[4]
    cdef uint8_t idst6[16]
    cdef uint32_t l4 = out4.l4
    cdef uint32_t msg_len = out4.end - l4
    cdef uint32_t inner_start = l4 + 8
    cdef uint32_t quoted = out4.end - inner_start
    cdef uint32_t original = quoted
    cdef uint32_t ext_len = 0, field, inner_len, inner_l4len, inner_plen, ifh, copy_len
    cdef uint32_t total, wcap, rest = 0, pointer = 0
    cdef uint8_t t6 = 0, c6 = 0, length_words
    cdef uint8_t* w
    cdef int rc
    cdef L4Patch pt
    if sum_bytes(p, cap, l4, msg_len) != 0xffff:
        return drop(JSTAT46_ICMP_CSUM)
    rc = map_icmp4_to_6(out4.icmp_type, out4.icmp_code, &t6, &c6, &pointer)
    if rc:
        return rc
    if out4.icmp_type == ICMP4_PARAM_PROB:
        rc = pointer_4to6(rd8(p, cap, l4 + 4), &pointer)
        if rc:
            return rc
    if out4.icmp_type == ICMP4_DEST_UNREACH or out4.icmp_type == ICMP4_TIME_EXCEEDED \
            or out4.icmp_type == ICMP4_PARAM_PROB:
        length_words = rd8(p, cap, l4 + 5)       # RFC 4884 §4.3: 32-bit words
        if length_words != 0:
            original = <uint32_t>length_words * 4
            if original > quoted:
                return drop(JSTAT_ICMPEXT_BIG)
            ext_len = quoted - original
    rc = parse_ipv4(p, cap, inner_start, original, True, &inner)
    if rc:
        return rc
    if inner.proto == PROTO_ICMP and inner.first and icmp4_is_error(inner.icmp_type):
        return drop(JSTAT_DOUBLE_ICMP4_ERROR)
    if inner.proto != PROTO_TCP and inner.proto != PROTO_UDP and inner.proto != PROTO_ICMP:
        return pass_up(JSTAT_UNKNOWN_PROTO_INNER)
    if not inner.first:
        return drop(JSTAT46_FRAGMENTED_ICMP)
    if out4.ttl <= 1 and not ctx.hairpin:
        return drop(JSTAT46_TTL)        # no error about an error
    if t6 == ICMP6_PKT_TOO_BIG:
        rest = mtu_4to6(cfg, rd16(p, cap, l4 + 6), inner.total)
    elif t6 == ICMP6_PARAM_PROB:
        rest = pointer
    load(osrc4, 4, p, cap, out4.start + 12)
    load(isrc4, 4, p, cap, inner.start + 12)
    load(idst4, 4, p, cap, inner.start + 16)
    rfc6052_embed(&cfg.pool6, idst4, idst6)
    if cfg.source_icmpv6_errors_better:
        rfc6052_embed(&cfg.pool6, osrc4, osrc6)     # spec §8.4: the reporting router
    else:
        rfc6052_embed(&cfg.pool6, idst4, osrc6)     # RFC 6146: the original peer
    inner_l4len = inner.end - inner.l4
    inner_plen = inner.total - (inner.l4 - inner.start)
    ifh = 8 if inner.fragment else 0
    if inner.proto == PROTO_ICMP:
        if inner.icmp_type != ICMP4_ECHO_REQUEST and inner.icmp_type != ICMP4_ECHO_REPLY:
            return drop(JSTAT_UNKNOWN_ICMP4_TYPE)
        patch_echo(p, cap, &inner, 0, pseudo6(m.addr, idst6, inner_plen, PROTO_ICMPV6),
                   ICMP6_ECHO_REQUEST if inner.icmp_type == ICMP4_ECHO_REQUEST else ICMP6_ECHO_REPLY,
                   m.port, &pt)
    else:
        rc = patch_tcp_udp(p, cap, &inner, True,
                           add(addr_sum(isrc4, 4), addr_sum(idst4, 4)),
                           add(addr_sum(m.addr, 16), addr_sum(idst6, 16)),
                           True, m.port, False, JSTAT_UNKNOWN, &pt)
        if rc:
            return rc
    inner_len = 40 + ifh + inner_l4len
    if ext_len:
        field = round_up(inner_len, 8)
        if field < RFC4884_MIN_ORIGINAL:
            field = RFC4884_MIN_ORIGINAL
        if 48 + field + ext_len > ICMP6_ERROR_MAX:
            if ICMP6_ERROR_MAX < 48 + ext_len + 48 + ifh:
                return drop(JSTAT_ICMPEXT_BIG)
            field = (ICMP6_ERROR_MAX - 48 - ext_len) // 8 * 8
        if inner_len > field:
            inner_len = field
        total = 48 + field + ext_len
    else:
        if 48 + inner_len > ICMP6_ERROR_MAX:
            inner_len = ICMP6_ERROR_MAX - 48
        field = inner_len
        total = 48 + inner_len
    copy_len = inner_len - 40 - ifh
    w = reserve(o, total, 1)
    if w == NULL:
        return no_space()
    wcap = o.cap - o.used
    put_ipv6(w, wcap, tclass_4to6(cfg, out4.tos), total - 40, PROTO_ICMPV6,
             out4.ttl if ctx.hairpin else out4.ttl - 1, osrc6, m.addr)
    wr8(w, wcap, 40, t6)
    wr8(w, wcap, 41, c6)
    wr16(w, wcap, 42, 0)
    wr32(w, wcap, 44, rest)
    if ext_len:
        wr8(w, wcap, 44, <uint8_t>(field // 8))     # RFC 4884: 64-bit words in ICMPv6
    if inner.fragment:
        put_ipv6(w + 48, wcap - 48, tclass_4to6(cfg, inner.tos), inner_plen + 8, PROTO_FRAGMENT,
                 inner.ttl, m.addr, idst6)
        put_frag_header(w, wcap, 88, proto_4to6(inner.proto), 0, inner.mf, inner.frag_id)
    else:
        put_ipv6(w + 48, wcap - 48, tclass_4to6(cfg, inner.tos), inner_plen,
                 proto_4to6(inner.proto), inner.ttl, m.addr, idst6)
    copy(w, wcap, 88 + ifh, p, cap, inner.l4, copy_len)
    apply_patch(w, wcap, 88 + ifh, copy_len, &pt)
    if field > inner_len:
        zero(w, wcap, 48 + inner_len, field - inner_len)
    if ext_len:
        copy(w, wcap, 48 + field, p, cap, inner_start + original, ext_len)
    wr16(w, wcap, 42, finish(add(pseudo6(osrc6, m.addr, total - 40, PROTO_ICMPV6),
                                 sum_bytes(w, wcap, 40, total - 40))))
    commit(o, total, OUT_IPV6)
    return 0


# ---------------------------------------------------------------- errors we originate

cdef int emit_icmp6_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in6,
                          uint8_t type, uint8_t code, uint32_t rest, Out* o) noexcept nogil:
    """An ICMPv6 error from own6 to the packet's source, quoting as much of it as
    fits in 1280 bytes (RFC 4443 §2.4)."""
    cdef uint8_t src6[16]
    cdef uint32_t quote = in6.end - in6.start
    cdef uint32_t total, wcap
    cdef uint8_t* w
    if quote > ICMP6_ERROR_MAX - 48:
        quote = ICMP6_ERROR_MAX - 48
    total = 48 + quote
    w = reserve(o, total, 1)
    if w == NULL:
        return no_space()
    wcap = o.cap - o.used
    load(src6, 16, p, cap, in6.start + 8)
    put_ipv6(w, wcap, 0, 8 + quote, PROTO_ICMPV6, GENERATED_TTL, ctx.cfg.own6, src6)
    wr8(w, wcap, 40, type)
    wr8(w, wcap, 41, code)
    wr16(w, wcap, 42, 0)
    wr32(w, wcap, 44, rest)
    copy(w, wcap, 48, p, cap, in6.start, quote)
    wr16(w, wcap, 42, finish(add(pseudo6(ctx.cfg.own6, src6, 8 + quote, PROTO_ICMPV6),
                                 sum_bytes(w, wcap, 40, 8 + quote))))
    commit(o, total, OUT_ICMP6_ERROR)
    return 0


cdef int emit_icmp4_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in4,
                          uint8_t type, uint8_t code, uint32_t rest, Out* o) noexcept nogil:
    """An ICMPv4 error from own4 to the packet's source."""
    return emit_icmp4_error_from(ctx, p, cap, in4, type, code, rest, ctx.cfg.own4, o)


cdef int emit_icmp4_error_from(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in4,
                               uint8_t type, uint8_t code, uint32_t rest, const uint8_t* src4,
                               Out* o) noexcept nogil:
    """An ICMPv4 error from src4 to the packet's source, quoting as much of it as
    fits in 576 bytes (RFC 1812 §4.3.2.3)."""
    cdef uint8_t dst4[4]
    cdef uint32_t quote = in4.end - in4.start
    cdef uint32_t total, wcap
    cdef uint8_t* w
    if quote > ICMP4_ERROR_MAX - 28:
        quote = ICMP4_ERROR_MAX - 28
    total = 28 + quote
    w = reserve(o, total, 1)
    if w == NULL:
        return no_space()
    wcap = o.cap - o.used
    load(dst4, 4, p, cap, in4.start + 12)
    put_ipv4(w, wcap, total, 0, <uint16_t>ctx.next_ip_id, 0, GENERATED_TTL, PROTO_ICMP,
             src4, dst4)
    wr8(w, wcap, 20, type)
    wr8(w, wcap, 21, code)
    wr16(w, wcap, 22, 0)
    wr32(w, wcap, 24, rest)
    copy(w, wcap, 28, p, cap, in4.start, quote)
    wr16(w, wcap, 22, finish(sum_bytes(w, wcap, 20, 8 + quote)))
    ctx.next_ip_id += 1
    commit(o, total, OUT_ICMP4_ERROR)
    return 0
