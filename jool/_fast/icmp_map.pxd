# ICMP type/code and field mapping between ICMPv4 and ICMPv6.
# RFC 7915 §4.2 (v4 -> v6) and §5.2 (v6 -> v4); pointer tables per RFC 7915
# Figure 6 and spec/behaviour.md §10.1; MTU arithmetic per spec §10.1, §10.3.

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from jool._fast.counters cimport *
from jool._fast.packet cimport drop, XlatConfig

cdef enum:
    ICMP4_ECHO_REPLY = 0
    ICMP4_DEST_UNREACH = 3
    ICMP4_ECHO_REQUEST = 8
    ICMP4_TIME_EXCEEDED = 11
    ICMP4_PARAM_PROB = 12
    ICMP6_DEST_UNREACH = 1
    ICMP6_PKT_TOO_BIG = 2
    ICMP6_TIME_EXCEEDED = 3
    ICMP6_PARAM_PROB = 4
    ICMP6_ECHO_REQUEST = 128
    ICMP6_ECHO_REPLY = 129


cdef inline bint icmp4_is_error(uint8_t t) noexcept nogil:
    # Every ICMPv4 error type (RFC 792 and later), not only those RFC 7915 translates:
    # an error quoting any of them is an "error inside an error".
    return t == 3 or t == 4 or t == 5 or t == 11 or t == 12 or t == 31


cdef inline bint icmp6_is_error(uint8_t t) noexcept nogil:
    return t < 128


cdef inline int map_icmp6_to_4(uint8_t t, uint8_t c, uint8_t* t4, uint8_t* c4) noexcept nogil:
    """RFC 7915 §5.2. 0 or a drop code."""
    if t == ICMP6_ECHO_REQUEST:
        t4[0] = ICMP4_ECHO_REQUEST; c4[0] = c
    elif t == ICMP6_ECHO_REPLY:
        t4[0] = ICMP4_ECHO_REPLY; c4[0] = c
    elif t == ICMP6_DEST_UNREACH:
        t4[0] = ICMP4_DEST_UNREACH
        if c == 0 or c == 2 or c == 3:
            c4[0] = 1           # host unreachable
        elif c == 1:
            c4[0] = 10          # communication with host administratively prohibited
        elif c == 4:
            c4[0] = 3           # port unreachable
        else:
            return drop(JSTAT_UNKNOWN_ICMP6_TYPE)
    elif t == ICMP6_PKT_TOO_BIG:
        t4[0] = ICMP4_DEST_UNREACH; c4[0] = 4
    elif t == ICMP6_TIME_EXCEEDED:
        t4[0] = ICMP4_TIME_EXCEEDED; c4[0] = c
    elif t == ICMP6_PARAM_PROB:
        if c == 0:
            t4[0] = ICMP4_PARAM_PROB; c4[0] = 0
        elif c == 1:
            t4[0] = ICMP4_DEST_UNREACH; c4[0] = 2       # protocol unreachable
        else:
            return drop(JSTAT_UNKNOWN_ICMP6_TYPE)
    else:
        return drop(JSTAT_UNKNOWN_ICMP6_TYPE)
    return 0


cdef inline int map_icmp4_to_6(uint8_t t, uint8_t c, uint8_t* t6, uint8_t* c6,
                               uint32_t* pointer) noexcept nogil:
    """RFC 7915 §4.2. 0 or a drop code; *pointer is set for "protocol unreachable"."""
    if t == ICMP4_ECHO_REQUEST:
        t6[0] = ICMP6_ECHO_REQUEST; c6[0] = c
    elif t == ICMP4_ECHO_REPLY:
        t6[0] = ICMP6_ECHO_REPLY; c6[0] = c
    elif t == ICMP4_DEST_UNREACH:
        t6[0] = ICMP6_DEST_UNREACH
        if c == 0 or c == 1 or c == 5 or c == 6 or c == 7 or c == 8 or c == 11 or c == 12:
            c6[0] = 0           # no route to destination
        elif c == 9 or c == 10 or c == 13 or c == 15:
            c6[0] = 1           # administratively prohibited
        elif c == 3:
            c6[0] = 4           # port unreachable
        elif c == 2:
            t6[0] = ICMP6_PARAM_PROB; c6[0] = 1         # unrecognized Next Header
            pointer[0] = 6                                 # ... pointing at Next Header
        elif c == 4:
            t6[0] = ICMP6_PKT_TOO_BIG; c6[0] = 0
        else:                   # 14 (host precedence violation) and unknown codes
            return drop(JSTAT_UNKNOWN_ICMP4_TYPE)
    elif t == ICMP4_TIME_EXCEEDED:
        t6[0] = ICMP6_TIME_EXCEEDED; c6[0] = c
    elif t == ICMP4_PARAM_PROB:
        if c == 0 or c == 2:
            t6[0] = ICMP6_PARAM_PROB; c6[0] = 0
        else:
            return drop(JSTAT_UNKNOWN_ICMP4_TYPE)
    else:
        return drop(JSTAT_UNKNOWN_ICMP4_TYPE)
    return 0


cdef inline int pointer_6to4(uint32_t p6, uint8_t* p4) noexcept nogil:
    """RFC 7915 Figure 6: IPv6 header byte -> IPv4 header byte."""
    if p6 == 0 or p6 == 1:
        p4[0] = <uint8_t>p6
    elif p6 == 4 or p6 == 5:
        p4[0] = 2
    elif p6 == 6:
        p4[0] = 9
    elif p6 == 7:
        p4[0] = 8
    elif 8 <= p6 <= 23:
        p4[0] = 12
    elif 24 <= p6 <= 39:
        p4[0] = 16
    else:                       # 2, 3 (flow label) and beyond the fixed header
        return drop(JSTAT64_UNTRANSLATABLE_PARAM_PROB_PTR)
    return 0


cdef inline int pointer_4to6(uint8_t p4, uint32_t* p6) noexcept nogil:
    """spec/behaviour.md §10.1: IPv4 header byte -> IPv6 header byte."""
    if p4 == 0 or p4 == 1:
        p6[0] = p4
    elif p4 == 2 or p4 == 3:
        p6[0] = 4
    elif p4 == 8:
        p6[0] = 7
    elif p4 == 9:
        p6[0] = 6
    elif 12 <= p4 <= 15:
        p6[0] = 8
    elif 16 <= p4 <= 19:
        p6[0] = 24
    else:
        return drop(JSTAT46_UNTRANSLATABLE_PARAM_PROBLEM_PTR)
    return 0


cdef inline uint32_t mtu_6to4(const XlatConfig* cfg, uint32_t mtu6_field) noexcept nogil:
    """ICMPv6 Packet Too Big -> ICMPv4 Fragmentation Needed (RFC 7915 §5.2)."""
    cdef uint32_t m = mtu6_field - 20 if mtu6_field > 20 else 0
    if cfg.mtu4_out < m:
        m = cfg.mtu4_out
    if cfg.mtu6_in >= 20 and cfg.mtu6_in - 20 < m:
        m = cfg.mtu6_in - 20
    if m > 0xffff:
        m = 0xffff
    return m


cdef inline uint32_t mtu_4to6(const XlatConfig* cfg, uint16_t mtu4_field,
                              uint32_t inner_total) noexcept nogil:
    """ICMPv4 Fragmentation Needed -> ICMPv6 Packet Too Big (spec §10.1, §10.3)."""
    cdef uint32_t base = mtu4_field
    cdef uint32_t i, m
    if base == 0:
        # RFC 1191 plateaus: the first (descending) strictly below the quoted length.
        for i in range(cfg.n_plateaus):
            if cfg.plateaus[i] < inner_total:
                base = cfg.plateaus[i]
                break
    m = base + 20
    if cfg.mtu6_out < m:
        m = cfg.mtu6_out
    if cfg.mtu4_in + 20 < m:
        m = cfg.mtu4_in + 20
    if m < 1280:
        m = 1280
    return m
