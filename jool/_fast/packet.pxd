# Plain data shared by the kernels: what parsing learned about a packet, the
# translator's configuration, the outgoing mapping and the output arena.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from jool._fast.rfc6052 cimport Prefix6
from jool._fast.tables cimport View

# IP protocol numbers
cdef enum:
    PROTO_HOPOPT = 0
    PROTO_ICMP = 1
    PROTO_TCP = 6
    PROTO_UDP = 17
    PROTO_ROUTING = 43
    PROTO_FRAGMENT = 44
    PROTO_ICMPV6 = 58
    PROTO_DSTOPTS = 60

# Packet verdicts (docs/core-api.md). A kernel returns 0 for success or
# (verdict << 8) | counter-ID; NO_SPACE means the output arena is full.
cdef enum:
    V_TRANSLATED = 0
    V_DROP = 1
    V_DROP_ICMP = 2
    V_PASS = 3
    V_NO_SPACE = 4

# Output kinds: the low nibble is the IP version.
cdef enum:
    OUT_IPV4 = 0x04
    OUT_IPV6 = 0x06
    OUT_ICMP4_ERROR = 0x14
    OUT_ICMP6_ERROR = 0x16
    OUT_GSO = 0x80              # flag: a TCP super-frame for the kernel to segment

cdef inline int drop(int counter) noexcept nogil:
    return (V_DROP << 8) | counter

cdef inline int pass_up(int counter) noexcept nogil:
    return (V_PASS << 8) | counter

cdef inline int drop_icmp(int counter) noexcept nogil:
    return (V_DROP_ICMP << 8) | counter

cdef inline int no_space() noexcept nogil:
    return V_NO_SPACE << 8


cdef struct IPInfo:
    uint32_t start          # offset of the IP header in the buffer
    uint32_t end            # one past the last byte of the packet that is present
    uint32_t total          # IP length the header claims (header + payload)
    uint32_t l4             # offset of the transport header
    uint8_t version
    uint8_t proto           # transport protocol (after IPv6 extension headers)
    uint8_t ttl             # TTL / hop limit
    uint8_t tos             # TOS / traffic class
    bint fragment           # IPv4: MF or offset set; IPv6: has a fragment header
    bint fragmented         # really a piece of a larger packet (an atomic IPv6
                            # fragment header, offset 0 and M=0, is whole: RFC 6946)
    bint first              # unfragmented or first fragment: the L4 header is there
    bint mf
    bint df
    uint16_t frag_offset    # in 8-byte units
    uint32_t frag_id
    uint32_t frag_hdr       # IPv6: offset of the fragment header, 0 if none
    uint16_t sport          # ports; ICMP query: the identifier in both
    uint16_t dport
    uint8_t icmp_type
    uint8_t icmp_code
    uint32_t segments_left_at   # IPv6: offset (from start) of a non-zero Segments Left, else 0
    bint ext_after_frag     # IPv6: hop-by-hop / routing / destination header after a fragment header
    bint source_route       # IPv4: unexpired LSRR or SSRR option


cdef struct XlatConfig:
    Prefix6 pool6
    uint8_t own4[4]             # source of ICMPv4 errors the translator generates
    uint8_t own6[16]            # source of ICMPv6 errors the translator generates
    uint32_t mtu4_out
    uint32_t mtu6_out
    uint32_t mtu4_in
    uint32_t mtu6_in
    uint32_t lowest_ipv6_mtu
    bint enabled                # manually-enabled
    bint pool6_set
    bint zeroize_traffic_class
    bint override_tos
    uint8_t tos
    uint16_t plateaus[64]       # descending, no zeros, no duplicates
    uint32_t n_plateaus
    bint source_icmpv6_errors_better
    bint drop_icmpv6_info


cdef struct Mapping:
    # 6->4: IPv4 source (addr[0:4]) and source port / ICMP id.
    # 4->6: IPv6 destination (addr[0:16]) and destination port / ICMP id.
    uint8_t addr[16]
    uint16_t port


cdef struct Out:
    uint8_t* buf
    uint32_t cap
    uint32_t used
    uint32_t* rec_off
    uint32_t* rec_len
    uint32_t* rec_input
    uint8_t* rec_kind
    uint16_t* rec_gso               # per record: segment size of a GSO frame, 0 = a plain
                                    # packet; NULL = the caller sends no GSO frames
    uint32_t n
    uint32_t max_n
    uint32_t input_index


cdef inline void out_init(Out* o, uint8_t* buf, uint32_t cap, uint32_t* rec_off,
                          uint32_t* rec_len, uint32_t* rec_input, uint8_t* rec_kind,
                          uint16_t* rec_gso, uint32_t max_n) noexcept nogil:
    """An empty output arena over the caller's buffer and record arrays (rec_gso
    NULL: the caller sends no super-frames whole)."""
    o.buf = buf
    o.cap = cap
    o.used = 0
    o.rec_off = rec_off
    o.rec_len = rec_len
    o.rec_input = rec_input
    o.rec_kind = rec_kind
    o.rec_gso = rec_gso
    o.n = 0
    o.max_n = max_n
    o.input_index = 0


cdef struct Pool4Range:
    uint8_t addr[4]
    uint16_t min
    uint16_t max
    uint32_t before             # candidates in the set's earlier ranges (prefix sum)


cdef struct Pool4Set:
    uint32_t mark
    uint8_t proto
    uint32_t first              # its ranges: ranges[first : first + count], by (address, port)
    uint32_t count
    uint32_t total              # T, the number of transport addresses
    uint32_t max_iterations     # effective cap; 0 = infinity


cdef struct Nat64Config:
    const Pool4Set* sets
    uint32_t n_sets
    const Pool4Range* ranges
    const Pool4Range* members   # every range merged per protocol, sorted: 4->6 membership
    uint32_t member_first[3]
    uint32_t member_count[3]
    bint pool4_empty
    uint8_t empty_addr[4]       # spec §3.5: the address used while pool4 is empty
    bint address_dependent_filtering
    bint drop_externally_initiated_tcp
    bint handle_rst_during_fin_rcv
    uint8_t f_args
    uint32_t maximum_simultaneous_opens
    uint32_t tcp_est_timeout    # milliseconds
    uint32_t tcp_trans_timeout
    uint32_t udp_timeout
    uint32_t icmp_timeout


cdef struct Ctx:
    const XlatConfig* cfg
    uint64_t* counters          # COUNTER_SLOTS entries
    uint32_t next_ip_id         # IPv4 identification for unfragmented 6->4 packets
    const Nat64Config* nat      # NULL: stateless (the caller gives the outgoing tuple)
    View* tables
    uint32_t now                # milliseconds, wrapping
    uint32_t mark               # the packet's mark (6->4 selects the pool4 set)
    bint hairpin                # second pass of a hairpinned packet: TTL kept (spec §13)
    uint64_t hint               # the session-index hash the batch prefetch computed, 0 = none
    bint reassembled            # the packet was put together from IPv6 fragments
    const uint16_t* in_gso      # per input: the super-frame's segment size (virtio-net
                                # header), 0 = none; NULL = no input is a super-frame
    uint16_t gso_size           # the current input's
