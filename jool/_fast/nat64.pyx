"""RFC 6146 §3.5 "filtering and updating binding and session information" and §3.6
"computing the outgoing tuple", with Jool 4.1.9's behaviour (spec/behaviour.md):
pool4 sets and RFC 6056 port choice (§3-4), BIB and session lifetimes (§5), the
TCP state machine (§7), the filtering options (§8), simultaneous open (§9).

Each function returns 0 with the outgoing tuple (`Mapping`) filled in, or a
verdict code. Established flows take a lock-free lookup; everything that creates,
removes or changes state runs under the tables' writer lock (tables.pyx).
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.string cimport memcpy, memcmp, memset

from jool._fast.wire cimport rd8, rd16, copy, be32, same4, jool_bounds_violations, JOOL_CHECKED
from jool._fast.counters cimport *
from jool._fast.packet cimport *
from jool._fast.rfc6052 cimport rfc6052_embed, rfc6052_extract, prefix6_contains
from jool._fast.siphash cimport siphash24
from jool._fast.parse cimport parse_ipv4, parse_ipv6
from jool._fast.tables cimport *
from jool._fast.atomics cimport jool_prefetch
from jool._fast.rfc7915 cimport emit_icmp4_error, emit_icmp4_error_from

cdef enum:
    TCP_FIN = 0x01
    TCP_SYN = 0x02
    TCP_RST = 0x04
    TCP_ACK = 0x10
    SO_TIMEOUT = 6000              # spec §9: stored SYNs wait 6 seconds
    EMPTY_POOL4_FIRST = 61001      # spec §3.5
    EMPTY_POOL4_COUNT = 4535       # 61001-65535
    PROBE_HOP_LIMIT = 255


def bounds_violations():
    """Packet accesses this module's checked build refused (wire.pxd keeps one
    count per module, so pipeline.bounds_violations() adds this one in)."""
    return jool_bounds_violations


cdef extern from *:
    """
    static unsigned long long jool_stale_hints = 0;
    """
    unsigned long long jool_stale_hints


def stale_hints():
    """Lookups of the checked build whose batch-prefetch hash (ctx.hint) was not
    the hash of the packet's own key. A stale hint costs a table search, not a
    wrong answer (the slow path looks again), so only this count shows one."""
    return jool_stale_hints


cdef inline uint8_t table_proto(uint8_t proto) noexcept nogil:
    return PROTO_ICMP if proto == PROTO_ICMPV6 else proto


# ---------------------------------------------------------------- pool4

cdef const Pool4Set* find_set(const Nat64Config* nat, uint8_t proto, uint32_t mark) noexcept nogil:
    cdef uint32_t i
    for i in range(nat.n_sets):
        if nat.sets[i].proto == proto and nat.sets[i].mark == mark:
            return &nat.sets[i]
    return NULL


cdef inline int cmp_transport(const uint8_t* addr, uint16_t port, const Pool4Range* r) noexcept nogil:
    cdef uint32_t a = be32(addr), b = be32(r.addr)
    if a != b:
        return -1 if a < b else 1
    if port < r.min:
        return -1
    if port > r.max:
        return 1
    return 0


cdef bint pool4_contains(const Nat64Config* nat, const uint8_t* own_empty, uint8_t proto,
                         const uint8_t* addr, uint16_t port) noexcept nogil:
    """4->6 membership (spec §3.1): any set of the protocol, whatever its mark.
    Empty pool4 (spec §3.5): port >= 61001 on the translator's address."""
    cdef uint32_t s = proto_slot(proto)
    cdef uint32_t lo = nat.member_first[s]
    cdef uint32_t hi = lo + nat.member_count[s]
    cdef uint32_t mid
    cdef int c
    if nat.pool4_empty:
        return port >= EMPTY_POOL4_FIRST and same4(addr, own_empty)
    while lo < hi:
        mid = (lo + hi) >> 1
        c = cmp_transport(addr, port, &nat.members[mid])
        if c == 0:
            return True
        if c < 0:
            hi = mid
        else:
            lo = mid + 1
    return False


cdef bint set_contains(const Nat64Config* nat, const Pool4Set* ps, const uint8_t* addr,
                       uint16_t port) noexcept nogil:
    cdef uint32_t i
    for i in range(ps.first, ps.first + ps.count):
        if cmp_transport(addr, port, &nat.ranges[i]) == 0:
            return True
    return False


cdef uint32_t rfc6056_f(View* t, const Nat64Config* nat, const uint8_t* src6, uint16_t sport,
                        const uint8_t* dst6, uint16_t dport) noexcept nogil:
    """F() of RFC 6056 algorithm 3 over the f-args inputs (spec §4). Keyed SipHash
    stands in for MD5 + secret: the values are unobservable, the inputs are not."""
    cdef uint8_t buf[36]
    cdef uint32_t n = 0
    if nat.f_args & 8:
        memcpy(buf + n, src6, 16); n += 16
    if nat.f_args & 4:
        memcpy(buf + n, &sport, 2); n += 2
    if nat.f_args & 2:
        memcpy(buf + n, dst6, 16); n += 16
    if nat.f_args & 1:
        memcpy(buf + n, &dport, 2); n += 2
    return <uint32_t>siphash24(t.h.fkey, buf, n)


cdef int allocate_mask(Ctx* ctx, uint8_t proto, const uint8_t* src6, uint16_t sport,
                       const uint8_t* dst6, uint16_t dport, uint8_t* out4,
                       uint16_t* out_port) noexcept nogil:
    """RFC 6056 algorithm 3 (spec §4): walk the set's candidates from F() plus the
    global counter; the first transport address no BIB entry uses wins."""
    cdef const Nat64Config* nat = ctx.nat
    cdef View* t = ctx.tables
    cdef const Pool4Set* ps = NULL
    cdef const Pool4Range* r
    cdef uint32_t total, limit, start, i, lo, hi, mid, rel
    cdef uint32_t offset
    cdef uint32_t port
    if nat.pool4_empty:
        total = EMPTY_POOL4_COUNT
        limit = total
    else:
        ps = find_set(nat, proto, ctx.mark)
        if ps == NULL or ps.total == 0:
            return drop(JSTAT_MASK_DOMAIN_NOT_FOUND)
        total = ps.total
        limit = total if ps.max_iterations == 0 or ps.max_iterations > total else ps.max_iterations
    offset = rfc6056_f(t, nat, src6, sport, dst6, dport) + <uint32_t>t.h.next_ephemeral
    start = offset % total
    if nat.pool4_empty:
        start = (start + 1) % total
        for i in range(limit):
            port = EMPTY_POOL4_FIRST + (start + i) % total
            if bib_find4(t, nat.empty_addr, <uint16_t>port, proto) == NONE:
                t.h.next_ephemeral += i + 1
                memcpy(out4, nat.empty_addr, 4)
                out_port[0] = <uint16_t>port
                return 0
        t.h.next_ephemeral += limit
        return drop(JSTAT_BIB6_NOT_FOUND)
    # The range holding candidate number `start` (prefix sums are ascending).
    lo = ps.first
    hi = ps.first + ps.count
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if nat.ranges[mid].before <= start:
            lo = mid
        else:
            hi = mid
    r = &nat.ranges[lo]
    port = r.min + (start - r.before)
    for i in range(limit):
        if bib_find4(t, r.addr, <uint16_t>port, proto) == NONE:
            t.h.next_ephemeral += i + 1
            memcpy(out4, r.addr, 4)
            out_port[0] = <uint16_t>port
            return 0
        if port < r.max:
            port += 1
        else:
            lo += 1
            if lo == ps.first + ps.count:
                lo = ps.first
            r = &nat.ranges[lo]
            port = r.min
    t.h.next_ephemeral += limit
    return drop(JSTAT_BIB6_NOT_FOUND)


cdef inline void set_mapping4(Mapping* m, const uint8_t* addr4, uint16_t port) noexcept nogil:
    memset(m.addr, 0, 16)
    memcpy(m.addr, addr4, 4)
    m.port = port


cdef inline void set_mapping6(Mapping* m, const uint8_t* addr6, uint16_t port) noexcept nogil:
    memcpy(m.addr, addr6, 16)
    m.port = port


# ---------------------------------------------------------------- 6 -> 4

cdef int new_bib_6(Ctx* ctx, uint8_t proto, const uint8_t* src6, uint16_t sport,
                   const uint8_t* dst6, uint16_t dport, uint32_t* b) noexcept nogil:
    cdef uint8_t addr4[4]
    cdef uint16_t port4 = 0
    cdef int rc = allocate_mask(ctx, proto, src6, sport, dst6, dport, addr4, &port4)
    if rc:
        return rc
    b[0] = bib_create(ctx.tables, src6, sport, addr4, port4, proto, False, ctx.now)
    return drop(JSTAT_ENOMEM) if b[0] == NONE else 0


cdef int tcp_from_v6(Ctx* ctx, uint32_t e, uint8_t flags) noexcept nogil:
    """spec §7, a packet from the IPv6 side on an existing session (lock held)."""
    cdef View* t = ctx.tables
    cdef Session* s = &t.sess[e]
    cdef uint32_t now = ctx.now
    cdef bint syn = flags & TCP_SYN, fin = flags & TCP_FIN, rst = flags & TCP_RST
    cdef uint8_t st = s.state
    if st == TCP_V6_INIT:
        if syn:
            sess_set(t, e, TCP_V6_INIT, TIMER_TRANS, now, True)
    elif st == TCP_V4_INIT:
        if syn:
            if s.flags & S_STORED_SYN:          # the stored IPv4 SYN is discarded silently
                so_free(t, s.so_slot)
                s.flags &= ~S_STORED_SYN
                s.so_slot = 0xffff
            sess_set(t, e, TCP_ESTABLISHED, TIMER_EST, now, True)
    elif st == TCP_ESTABLISHED:
        if fin:
            sess_set(t, e, TCP_V6_FIN_RCV, s.timer, now, False)
        elif rst:
            sess_set(t, e, TCP_TRANS, TIMER_TRANS, now, True)
        else:
            sess_touch(t, e, now)
    elif st == TCP_V4_FIN_RCV:
        if fin:
            sess_set(t, e, TCP_V4_FIN_V6_FIN_RCV, TIMER_TRANS, now, True)
        elif rst and ctx.nat.handle_rst_during_fin_rcv:
            sess_set(t, e, st, TIMER_TRANS, now, True)
        else:
            sess_set(t, e, st, TIMER_EST, now, True)
    elif st == TCP_V6_FIN_RCV:
        if rst and ctx.nat.handle_rst_during_fin_rcv:
            sess_set(t, e, st, TIMER_TRANS, now, True)
        else:
            sess_set(t, e, st, TIMER_EST, now, True)
    elif st == TCP_TRANS:
        if not rst:
            sess_set(t, e, TCP_ESTABLISHED, TIMER_EST, now, True)
    return 0


cdef int tcp_from_v4(Ctx* ctx, uint32_t e, uint8_t flags) noexcept nogil:
    """spec §7, a packet from the IPv4 side on an existing session (lock held)."""
    cdef View* t = ctx.tables
    cdef Session* s = &t.sess[e]
    cdef uint32_t now = ctx.now
    cdef bint syn = flags & TCP_SYN, fin = flags & TCP_FIN, rst = flags & TCP_RST
    cdef uint8_t st = s.state
    if s.flags & S_STORED_SYN:
        return drop(JSTAT_SO_EXISTS)
    if st == TCP_V6_INIT:
        if syn:
            sess_set(t, e, TCP_ESTABLISHED, TIMER_EST, now, True)
    elif st == TCP_ESTABLISHED:
        if fin:
            sess_set(t, e, TCP_V4_FIN_RCV, s.timer, now, False)
        elif rst:
            sess_set(t, e, TCP_TRANS, TIMER_TRANS, now, True)
        else:
            sess_touch(t, e, now)
    elif st == TCP_V4_FIN_RCV:
        if rst and ctx.nat.handle_rst_during_fin_rcv:
            sess_set(t, e, st, TIMER_TRANS, now, True)
        else:
            sess_set(t, e, st, TIMER_EST, now, True)
    elif st == TCP_V6_FIN_RCV:
        if fin:
            sess_set(t, e, TCP_V4_FIN_V6_FIN_RCV, TIMER_TRANS, now, True)
        elif rst and ctx.nat.handle_rst_during_fin_rcv:
            sess_set(t, e, st, TIMER_TRANS, now, True)
        else:
            sess_set(t, e, st, TIMER_EST, now, True)
    elif st == TCP_TRANS:
        if not rst:
            sess_set(t, e, TCP_ESTABLISHED, TIMER_EST, now, True)
    return 0


cdef int update_6to4_locked(Ctx* ctx, uint8_t proto, const uint8_t* src6, uint16_t sport,
                            const uint8_t* dst6, const uint8_t* dst4, uint16_t dport,
                            uint16_t kdport, uint8_t flags, Mapping* m) noexcept nogil:
    cdef View* t = ctx.tables
    cdef Session snap
    cdef uint32_t e, b, so
    cdef int rc
    e = sess_find6(t, src6, sport, dst4, kdport, proto, &snap)
    if proto != PROTO_TCP:
        if e != NONE:
            sess_touch(t, e, ctx.now)
        else:
            b = bib_find6(t, src6, sport, proto)
            if b == NONE:
                rc = new_bib_6(ctx, proto, src6, sport, dst6, dport, &b)
                if rc:
                    return rc
            e = sess_create(t, b, dst4, kdport, TCP_ESTABLISHED, TIMER_EST, ctx.now)
            if e == NONE:
                if t.bib[b].sessions == NONE and not (t.bib[b].flags & B_STATIC):
                    bib_remove(t, b, ctx.now)
                return drop(JSTAT_ENOMEM)
        set_mapping4(m, t.sess[e].src4, t.sess[e].port4)
        return 0
    if e != NONE:
        tcp_from_v6(ctx, e, flags)
        set_mapping4(m, t.sess[e].src4, t.sess[e].port4)
        return 0
    b = bib_find6(t, src6, sport, PROTO_TCP)
    if b == NONE:
        # spec §9 type 1: an IPv4 SYN waits for this very connection; any IPv6
        # packet of it (not only a SYN) takes the SYN's IPv4 transport address.
        so = so_find(t, SO_TYPE1, dst4, dport)
        if so != NONE and bib_find4(t, t.so[so].local4, t.so[so].local_port, PROTO_TCP) == NONE \
                and (ctx.nat.pool4_empty or set_contains(ctx.nat, find_set(ctx.nat, PROTO_TCP, ctx.mark),
                                                         t.so[so].local4, t.so[so].local_port)):
            b = bib_create(t, src6, sport, t.so[so].local4, t.so[so].local_port, PROTO_TCP, False,
                           ctx.now)
            if b == NONE:
                return drop(JSTAT_ENOMEM)
            so_free(t, so)
            e = sess_create(t, b, dst4, dport, TCP_V4_INIT, TIMER_SYN4, ctx.now)
            if e == NONE:
                bib_remove(t, b, ctx.now)
                return drop(JSTAT_ENOMEM)
            tcp_from_v6(ctx, e, flags)          # an IPv6 SYN makes it ESTABLISHED
            set_mapping4(m, t.sess[e].src4, t.sess[e].port4)
            return 0
    if not (flags & TCP_SYN):
        if b == NONE:
            return drop(JSTAT_SYN6_EXPECTED)
        set_mapping4(m, t.bib[b].src4, t.bib[b].port4)     # translated, no session
        return 0
    if b == NONE:
        rc = new_bib_6(ctx, PROTO_TCP, src6, sport, dst6, dport, &b)
        if rc:
            return rc
    e = sess_create(t, b, dst4, dport, TCP_V6_INIT, TIMER_TRANS, ctx.now)
    if e == NONE:
        if t.bib[b].sessions == NONE and not (t.bib[b].flags & B_STATIC):
            bib_remove(t, b, ctx.now)
        return drop(JSTAT_ENOMEM)
    set_mapping4(m, t.sess[e].src4, t.sess[e].port4)
    return 0


cdef int filtering_and_updating_6(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* info,
                                  Mapping* m) noexcept nogil:
    """RFC 6146 §3.5.1-3.5.2 for an IPv6 packet that is not an ICMP error."""
    global jool_stale_hints
    cdef const Nat64Config* nat = ctx.nat
    cdef View* t = ctx.tables
    cdef uint8_t src6[16]
    cdef uint8_t dst6[16]
    cdef uint8_t dst4[4]
    cdef uint8_t proto = table_proto(info.proto)
    cdef uint16_t kdport = 0 if proto == PROTO_ICMP else info.dport
    cdef uint8_t flags = 0
    cdef uint32_t e
    cdef Session snap
    cdef int rc
    if not info.first:
        return drop(JSTAT_UNKNOWN)      # fragments are reassembled before the core
    # spec §4 step 1 runs for every packet: the mark must name a pool4 set.
    if not nat.pool4_empty and find_set(nat, proto, ctx.mark) == NULL:
        return drop(JSTAT_MASK_DOMAIN_NOT_FOUND)
    copy(src6, 16, 0, p, n, info.start + 8, 16)
    copy(dst6, 16, 0, p, n, info.start + 24, 16)
    rfc6052_extract(&ctx.cfg.pool6, dst6, dst4)
    if proto == PROTO_TCP:
        flags = rd8(p, n, info.l4 + 13)
    if ctx.hint:
        if JOOL_CHECKED and ctx.hint != session_hash6(t, src6, info.sport, dst4, kdport, proto):
            jool_stale_hints += 1
        e = sess_find6_hashed(t, ctx.hint, src6, info.sport, dst4, kdport, proto, &snap)
    else:
        e = sess_find6(t, src6, info.sport, dst4, kdport, proto, &snap)
    if e != NONE and (proto != PROTO_TCP or (snap.state == TCP_ESTABLISHED
                                             and not (flags & (TCP_SYN | TCP_FIN | TCP_RST)))):
        sess_touch(t, e, ctx.now)
        set_mapping4(m, snap.src4, snap.port4)
        return 0
    # A full table refuses a new session before the lock and the pool4 search:
    # under a SYN flood that has filled it, each further SYN costs a lookup, not
    # a port hunt and a lock both workers wait on.
    if e == NONE and (proto != PROTO_TCP or flags & TCP_SYN) and sess_full(t):
        return drop(JSTAT_ENOMEM)
    lock(t)
    rc = update_6to4_locked(ctx, proto, src6, info.sport, dst6, dst4, info.dport, kdport, flags, m)
    unlock(t)
    return rc


# ---------------------------------------------------------------- 4 -> 6

cdef int update_4to6_locked(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* info,
                            uint8_t proto, const uint8_t* local4, uint16_t lport,
                            const uint8_t* remote4, uint16_t rport, uint16_t kdport,
                            uint8_t flags, Mapping* m, Out* o) noexcept nogil:
    cdef const Nat64Config* nat = ctx.nat
    cdef View* t = ctx.tables
    cdef Session snap
    cdef uint32_t e, b, slot
    cdef int rc
    e = sess_find4(t, local4, lport, remote4, kdport, proto, &snap)
    if proto != PROTO_TCP:
        if e != NONE:
            sess_touch(t, e, ctx.now)
        else:
            b = bib_find4(t, local4, lport, proto)
            if b == NONE:
                return pass_up(JSTAT_BIB4_NOT_FOUND)
            if nat.address_dependent_filtering and not bib_has_session_with(t, b, remote4):
                rc = emit_icmp4_error_from(ctx, p, n, info, 3, 13, 0, local4, o)
                return rc if rc else drop_icmp(JSTAT_ADF)
            e = sess_create(t, b, remote4, kdport, TCP_ESTABLISHED, TIMER_EST, ctx.now)
            if e == NONE:
                return drop(JSTAT_ENOMEM)
        set_mapping6(m, t.sess[e].src6, t.sess[e].sport6)
        return 0
    if e != NONE:
        rc = tcp_from_v4(ctx, e, flags)
        if rc:
            return rc
        set_mapping6(m, t.sess[e].src6, t.sess[e].sport6)
        return 0
    b = bib_find4(t, local4, lport, PROTO_TCP)
    if not (flags & TCP_SYN):
        if b == NONE:
            return drop(JSTAT_SYN4_EXPECTED)
        set_mapping6(m, t.bib[b].src6, t.bib[b].port6)      # translated, no session
        return 0
    if nat.drop_externally_initiated_tcp:
        return drop(JSTAT_V4_SYN)
    if b != NONE and not nat.address_dependent_filtering:
        e = sess_create(t, b, remote4, rport, TCP_V4_INIT, TIMER_TRANS, ctx.now)
        if e == NONE:
            return drop(JSTAT_ENOMEM)
        set_mapping6(m, t.bib[b].src6, t.bib[b].port6)
        return 0
    # spec §9: store the SYN (type 1 without BIB, type 2 with ADF).
    if b == NONE and so_find(t, SO_TYPE1, remote4, rport) != NONE:
        return drop(JSTAT_SO_EXISTS)
    if t.h.so_count >= nat.maximum_simultaneous_opens or t.h.so_count >= t.h.so_cap:
        rc = emit_icmp4_error_from(ctx, p, n, info, 3, 3, 0, local4, o)
        return rc if rc else drop_icmp(JSTAT_SO_FULL)
    if b == NONE:
        so_store(t, SO_TYPE1, p + info.start, info.end - info.start, remote4, rport,
                 local4, lport, NONE, ctx.now)
        return drop(JSTAT_TYPE1PKT)
    e = sess_create(t, b, remote4, rport, TCP_V4_INIT, TIMER_SYN4, ctx.now)
    if e == NONE:
        return drop(JSTAT_ENOMEM)
    slot = so_store(t, SO_TYPE2, p + info.start, info.end - info.start, remote4, rport,
                    local4, lport, e, ctx.now)
    t.sess[e].flags |= S_STORED_SYN
    t.sess[e].so_slot = <uint16_t>slot
    return drop(JSTAT_TYPE2PKT)


cdef int filtering_and_updating_4(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* info,
                                  Mapping* m, Out* o) noexcept nogil:
    """RFC 6146 §3.5.1-3.5.2 for an IPv4 packet that is not an ICMP error."""
    global jool_stale_hints
    cdef View* t = ctx.tables
    cdef uint8_t local4[4]
    cdef uint8_t remote4[4]
    cdef uint8_t proto = info.proto
    cdef uint16_t lport = info.dport
    cdef uint16_t rport = info.sport
    cdef uint16_t kdport = 0 if proto == PROTO_ICMP else rport
    cdef uint8_t flags = 0
    cdef uint32_t e
    cdef Session snap
    cdef int rc
    if not info.first:
        return drop(JSTAT_UNKNOWN)
    copy(local4, 4, 0, p, n, info.start + 16, 4)
    copy(remote4, 4, 0, p, n, info.start + 12, 4)
    if not pool4_contains(ctx.nat, ctx.nat.empty_addr, proto, local4, lport):
        return pass_up(JSTAT_POOL4_MISMATCH)
    if proto == PROTO_TCP:
        flags = rd8(p, n, info.l4 + 13)
    if ctx.hint:
        if JOOL_CHECKED and ctx.hint != session_hash4(t, local4, lport, remote4, kdport, proto):
            jool_stale_hints += 1
        e = sess_find4_hashed(t, ctx.hint, local4, lport, remote4, kdport, proto, &snap)
    else:
        e = sess_find4(t, local4, lport, remote4, kdport, proto, &snap)
    if e != NONE and not (snap.flags & S_STORED_SYN) and (
            proto != PROTO_TCP or (snap.state == TCP_ESTABLISHED
                                   and not (flags & (TCP_SYN | TCP_FIN | TCP_RST)))):
        sess_touch(t, e, ctx.now)
        set_mapping6(m, snap.src6, snap.sport6)
        return 0
    lock(t)
    rc = update_4to6_locked(ctx, p, n, info, proto, local4, lport, remote4, rport, kdport,
                            flags, m, o)
    unlock(t)
    return rc


# ---------------------------------------------------------------- ICMP errors (spec §5.5)

cdef int error_mapping_6(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* outer,
                         Mapping* m) noexcept nogil:
    """The BIB entry of an ICMPv6 error's quoted packet, which went to the client."""
    cdef IPInfo inner
    cdef uint8_t dst6[16]
    cdef uint32_t b
    cdef int rc = parse_ipv6(p, n, outer.l4 + 8, outer.end - outer.l4 - 8, True, &inner)
    if rc:
        return rc
    if inner.proto != PROTO_TCP and inner.proto != PROTO_UDP and inner.proto != PROTO_ICMPV6:
        return pass_up(JSTAT_UNKNOWN_PROTO_INNER)
    copy(dst6, 16, 0, p, n, inner.start + 24, 16)
    lock(ctx.tables)
    b = bib_find6(ctx.tables, dst6, inner.dport, table_proto(inner.proto))
    if b != NONE:
        set_mapping4(m, ctx.tables.bib[b].src4, ctx.tables.bib[b].port4)
    unlock(ctx.tables)
    return pass_up(JSTAT_SESSION_NOT_FOUND) if b == NONE else 0


cdef int error_mapping_4(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* outer,
                         Mapping* m) noexcept nogil:
    """The BIB entry of an ICMPv4 error's quoted packet, which came from pool4."""
    cdef IPInfo inner
    cdef uint8_t src4[4]
    cdef uint32_t b
    cdef int rc = parse_ipv4(p, n, outer.l4 + 8, outer.end - outer.l4 - 8, True, &inner)
    if rc:
        return rc
    if inner.proto != PROTO_TCP and inner.proto != PROTO_UDP and inner.proto != PROTO_ICMP:
        return pass_up(JSTAT_UNKNOWN_PROTO_INNER)
    copy(src4, 4, 0, p, n, inner.start + 12, 4)
    # The error is "for" the quoted packet's source: pool4 membership as any packet.
    if not pool4_contains(ctx.nat, ctx.nat.empty_addr, inner.proto, src4, inner.sport):
        return pass_up(JSTAT_POOL4_MISMATCH)
    lock(ctx.tables)
    b = bib_find4(ctx.tables, src4, inner.sport, inner.proto)
    if b != NONE:
        set_mapping6(m, ctx.tables.bib[b].src6, ctx.tables.bib[b].port6)
    unlock(ctx.tables)
    return pass_up(JSTAT_SESSION_NOT_FOUND) if b == NONE else 0


# ---------------------------------------------------------------- timers (spec §5.2, §7, §9)

cdef inline uint32_t session_timeout(const Nat64Config* nat, const Session* s) noexcept nogil:
    if s.timer == TIMER_SYN4:
        return SO_TIMEOUT
    if s.timer == TIMER_TRANS:
        return nat.tcp_trans_timeout
    if s.proto == PROTO_TCP:
        return nat.tcp_est_timeout
    if s.proto == PROTO_UDP:
        return nat.udp_timeout
    return nat.icmp_timeout


cdef inline bint expired(uint32_t now, uint32_t since, uint32_t timeout) noexcept nogil:
    return <uint32_t>(now - since) >= timeout and <int32_t>(now - since) >= 0


cdef int emit_probe(Ctx* ctx, const Session* s, Out* o) noexcept nogil:
    """spec §7: the bare ACK sent to the IPv6 client when an established session's
    timer runs out (it answers with a RST if the connection is gone)."""
    cdef uint8_t src6[16]
    cdef uint8_t* w
    cdef uint32_t wcap
    cdef uint64_t acc
    cdef uint32_t i
    if o.n >= o.max_n or 60 > o.cap - o.used:
        return no_space()
    w = o.buf + o.used
    wcap = o.cap - o.used
    rfc6052_embed(&ctx.cfg.pool6, s.dst4, src6)
    memset(w, 0, 60)
    w[0] = 0x60
    w[5] = 20
    w[6] = PROTO_TCP
    w[7] = PROBE_HOP_LIMIT
    memcpy(w + 8, src6, 16)
    memcpy(w + 24, s.src6, 16)
    w[40] = s.dport >> 8
    w[41] = s.dport & 0xff
    w[42] = s.sport6 >> 8
    w[43] = s.sport6 & 0xff
    w[52] = 5 << 4
    w[53] = TCP_ACK
    w[54] = 8192 >> 8
    # checksum: pseudo-header (addresses, length 20, next header 6) + the header
    acc = 20 + PROTO_TCP
    for i in range(8, 60, 2):
        acc += (<uint32_t>w[i] << 8) | w[i + 1]
    while acc >> 16:
        acc = (acc & 0xffff) + (acc >> 16)
    acc = ~acc & 0xffff
    w[56] = acc >> 8
    w[57] = acc & 0xff
    o.rec_off[o.n] = o.used
    o.rec_len[o.n] = 60
    o.rec_input[o.n] = 0xffffffff
    o.rec_kind[o.n] = OUT_IPV6
    if o.rec_gso != NULL:
        o.rec_gso[o.n] = 0
    o.n += 1
    o.used += 60
    return 0


cdef int emit_so_unreachable(Ctx* ctx, uint32_t slot, Out* o) noexcept nogil:
    """ICMPv4 port unreachable (3/3) quoting a stored SYN, to its source."""
    cdef View* t = ctx.tables
    cdef SoSlot* so = &t.so[slot]
    cdef IPInfo info
    if parse_ipv4(so.packet, so.length, 0, so.length, True, &info):
        return 0
    return emit_icmp4_error_from(ctx, so.packet, so.length, &info, 3, 3, 0, so.local4, o)


cdef uint32_t expire_pass(Ctx* ctx, uint32_t first, uint32_t count, Out* o) noexcept nogil:
    """Expires sessions [first, first + count) and stored SYNs; returns where it
    stopped (< first + count only when the output arena is full)."""
    cdef View* t = ctx.tables
    cdef const Nat64Config* nat = ctx.nat
    cdef uint32_t e, end = first + count, i
    cdef Session* s
    cdef uint32_t now = ctx.now
    lock(t)
    if end > t.h.sess_hwm:
        end = t.h.sess_hwm
    e = first
    while e < end:
        s = &t.sess[e]
        if s.flags & S_IN_USE and expired(now, s.last, session_timeout(nat, s)):
            if s.proto != PROTO_TCP:
                sess_remove(t, e, now)
            elif s.timer == TIMER_EST and s.state == TCP_ESTABLISHED:
                if emit_probe(ctx, s, o):
                    break
                sess_set(t, e, TCP_TRANS, TIMER_TRANS, now, True)
            elif s.timer == TIMER_SYN4 and s.flags & S_STORED_SYN:
                if emit_so_unreachable(ctx, s.so_slot, o):
                    break
                sess_remove(t, e, now)
            else:
                sess_remove(t, e, now)
        e += 1
    if e >= end:
        for i in range(t.h.so_cap):
            if t.so[i].kind == SO_TYPE1 and expired(now, t.so[i].stored_at, SO_TIMEOUT):
                if emit_so_unreachable(ctx, i, o):
                    break
                so_free(t, i)
    unlock(t)
    return e


cdef int notify_stored_syns(Ctx* ctx, uint32_t b, Out* o) noexcept nogil:
    """spec §5.4: before BIB entry b goes (lock held), every SYN its sessions hold
    is answered with a port unreachable."""
    cdef View* t = ctx.tables
    cdef uint32_t e = t.bib[b].sessions
    cdef uint32_t n = 0
    cdef int rc
    while e != NONE and n < t.h.sess_cap:
        if t.sess[e].flags & S_STORED_SYN and t.sess[e].so_slot != 0xffff:
            rc = emit_so_unreachable(ctx, t.sess[e].so_slot, o)
            if rc:
                return rc
        e = t.sess[e].bib_next
        n += 1
    return 0


# ---------------------------------------------------------------- batch prefetch

cdef uint64_t flow_hash(Ctx* ctx, const uint8_t* p, uint32_t n, bint* v6) noexcept nogil:
    """The session-index hash of a plain packet (no IPv6 extension headers), or 0.
    Only a hint: a packet it misreads is looked up properly later anyway."""
    cdef uint8_t dst4[4]
    cdef uint32_t hl
    cdef uint8_t proto
    cdef uint16_t a, b
    if n < 28:
        return 0
    if p[0] >> 4 == 6:
        if n < 48 or not prefix6_contains(&ctx.cfg.pool6, p + 24):
            return 0
        proto = p[6]
        a = (<uint16_t>p[40] << 8) | p[41]
        b = (<uint16_t>p[42] << 8) | p[43]
        if proto == PROTO_ICMPV6:
            a = (<uint16_t>p[44] << 8) | p[45]
            b = 0
            proto = PROTO_ICMP
        elif proto != PROTO_TCP and proto != PROTO_UDP:
            return 0
        rfc6052_extract(&ctx.cfg.pool6, p + 24, dst4)
        v6[0] = True
        return session_hash6(ctx.tables, p + 8, a, dst4, b, proto)
    if p[0] >> 4 == 4:
        hl = (p[0] & 0xf) * 4
        proto = p[9]
        if hl < 20 or n < hl + 8:
            return 0
        a = (<uint16_t>p[hl + 2] << 8) | p[hl + 3]      # local (pool4) port
        b = (<uint16_t>p[hl] << 8) | p[hl + 1]          # remote port
        if proto == PROTO_ICMP:
            a = (<uint16_t>p[hl + 4] << 8) | p[hl + 5]
            b = 0
        elif proto != PROTO_TCP and proto != PROTO_UDP:
            return 0
        v6[0] = False
        return session_hash4(ctx.tables, p + 16, a, p + 12, b, proto)
    return 0


cdef void prefetch_ahead(Ctx* ctx, const uint8_t* inbuf, uint32_t incap, const uint32_t* in_off,
                         const uint32_t* in_len, uint32_t count, uint32_t g, uint64_t* ring,
                         bint* ring_v6) noexcept nogil:
    """Entering group g of a batch (run_batch): the session-index hashes of group
    g + 2 and its index slots on their way, then the session entries of group g + 1,
    whose slots were prefetched a group ago (group 0 first primes groups 0 and 1).
    The prefetches go back to back, after the hashes: at 4 M sessions each is also
    a TLB miss whose page walk holds up retirement, and walks started together
    overlap where walks spread between other work each stall the core.
    `ring` holds four groups, group k at (k % 4) * PREFETCH_GROUP; a hash of 0
    means none (not a plain flow, or outside the buffer)."""
    cdef uint32_t k, first, n, i, e, m
    cdef uint32_t entries[2 * PREFETCH_GROUP]
    cdef uint64_t* h
    cdef bint* v6
    k = 0 if g == 0 else g + 2
    while k <= g + 2 and <uint64_t>k * PREFETCH_GROUP < count:
        first = k * PREFETCH_GROUP
        n = min(<uint32_t>PREFETCH_GROUP, count - first)
        h = ring + (k % 4) * PREFETCH_GROUP
        v6 = ring_v6 + (k % 4) * PREFETCH_GROUP
        for i in range(n):
            h[i] = 0
            if <uint64_t>in_off[first + i] + in_len[first + i] <= incap:
                h[i] = flow_hash(ctx, inbuf + in_off[first + i], in_len[first + i], &v6[i])
        for i in range(n):
            if h[i]:
                prefetch_slot(ctx.tables, v6[i], h[i])
        k += 1
    # The session entries (and the word of their group of 64 that sess_touch
    # reads) are found first and prefetched after, so that these prefetches too
    # run back to back.
    k = 0 if g == 0 else g + 1
    m = 0
    while k <= g + 1 and <uint64_t>k * PREFETCH_GROUP < count:
        n = min(<uint32_t>PREFETCH_GROUP, count - k * PREFETCH_GROUP)
        h = ring + (k % 4) * PREFETCH_GROUP
        v6 = ring_v6 + (k % 4) * PREFETCH_GROUP
        for i in range(n):
            if h[i]:
                e = tagged_entry(ctx.tables, v6[i], h[i])
                if e != NONE:
                    entries[m] = e
                    m += 1
        k += 1
    for i in range(m):
        jool_prefetch(&ctx.tables.sess[entries[i]])
        jool_prefetch(&ctx.tables.dirty[entries[i] >> DIRTY_SHIFT])
