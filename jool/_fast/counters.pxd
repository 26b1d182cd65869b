# Counter IDs, exactly as spec/stats.md numbers them (1-69); index 0 is unused.
# The per-packet verdict's reason is one of these IDs. Names: jool/_fast/stats.py

cdef enum:
    JSTAT_RECEIVED6 = 1
    JSTAT_RECEIVED4 = 2
    JSTAT_SUCCESS = 3
    JSTAT_BIB_ENTRIES = 4
    JSTAT_SESSIONS = 5
    JSTAT_ENOMEM = 6
    JSTAT_XLATOR_DISABLED = 7
    JSTAT_POOL6_UNSET = 8
    JSTAT_SKB_SHARED = 9
    JSTAT_L3HDR_OFFSET = 10
    JSTAT_SKB_TRUNCATED = 11
    JSTAT_HDR6 = 12
    JSTAT_HDR4 = 13
    JSTAT_UNKNOWN_L4_PROTO = 14
    JSTAT_UNKNOWN_ICMP6_TYPE = 15
    JSTAT_UNKNOWN_ICMP4_TYPE = 16
    JSTAT_DOUBLE_ICMP6_ERROR = 17
    JSTAT_DOUBLE_ICMP4_ERROR = 18
    JSTAT_UNKNOWN_PROTO_INNER = 19
    JSTAT_HAIRPIN_LOOP = 20
    JSTAT_POOL6_MISMATCH = 21
    JSTAT_POOL4_MISMATCH = 22
    JSTAT_ICMP6_FILTER = 23
    JSTAT_UNTRANSLATABLE_DST6 = 24
    JSTAT_UNTRANSLATABLE_DST4 = 25
    JSTAT_6056_F = 26
    JSTAT_MASK_DOMAIN_NOT_FOUND = 27
    JSTAT_BIB6_NOT_FOUND = 28
    JSTAT_BIB4_NOT_FOUND = 29
    JSTAT_SESSION_NOT_FOUND = 30
    JSTAT_ADF = 31
    JSTAT_V4_SYN = 32
    JSTAT_SYN6_EXPECTED = 33
    JSTAT_SYN4_EXPECTED = 34
    JSTAT_TYPE1PKT = 35
    JSTAT_TYPE2PKT = 36
    JSTAT_SO_EXISTS = 37
    JSTAT_SO_FULL = 38
    JSTAT64_SRC = 39
    JSTAT64_DST = 40
    JSTAT64_PSKB_COPY = 41
    JSTAT64_6791_ENOENT = 42
    JSTAT64_ICMP_CSUM = 43
    JSTAT64_UNTRANSLATABLE_PARAM_PROB_PTR = 44
    JSTAT64_TTL = 45
    JSTAT64_FRAGMENTED_ICMP = 46
    JSTAT64_2XFRAG = 47
    JSTAT64_FRAG_THEN_EXT = 48
    JSTAT64_SEGMENTS_LEFT = 49
    JSTAT46_SRC = 50
    JSTAT46_DST = 51
    JSTAT46_PSKB_COPY = 52
    JSTAT46_6791_ENOENT = 53
    JSTAT46_ICMP_CSUM = 54
    JSTAT46_UNTRANSLATABLE_PARAM_PROBLEM_PTR = 55
    JSTAT46_TTL = 56
    JSTAT46_FRAGMENTED_ICMP = 57
    JSTAT46_SRC_ROUTE = 58
    JSTAT46_FRAGMENTED_ZERO_CSUM = 59
    JSTAT46_BAD_MTU = 60
    JSTAT_FAILED_ROUTES = 61
    JSTAT_PKT_TOO_BIG = 62
    JSTAT_DST_OUTPUT = 63
    JSTAT_ICMP6ERR_SUCCESS = 64
    JSTAT_ICMP6ERR_FAILURE = 65
    JSTAT_ICMP4ERR_SUCCESS = 66
    JSTAT_ICMP4ERR_FAILURE = 67
    JSTAT_ICMPEXT_BIG = 68
    JSTAT_UNKNOWN = 69
    COUNTER_SLOTS = 70


# Dataplane counters (ours, not Jool's): slots after the spec's, in the same
# per-process rows of the shared counter block. Names in stats.py.
cdef enum:
    JDP_RX_FRAMES = 70          # frames read from the rings
    JDP_RX_TRUNCATED = 71       # frames cut at the ring's frame size (never sent)
    JDP_TX_CACHED = 72          # sent on a packet socket with a cached next hop
    JDP_TX_KERNEL = 73          # sent through a raw socket (the kernel routes them)
    JDP_TX_ERRORS = 74          # refused by the kernel at send time
    JDP_NH_MISSES = 75          # destinations without a usable next hop, queued
    JDP_NH_LEARNED = 76         # next hops resolved into the cache
    JDP_NH_REFUSED = 77         # destinations left to the kernel (no neighbour...)
    JDP_NO_SPACE = 78           # chunks cut short by a full output buffer
    JDP_NFQ_RECEIVED = 79       # packets handed over by netfilter queues
    JDP_NFQ_ACCEPTED = 80       # ...and given back to the kernel untranslated
    JDP_RX_DROPPED = 81         # frames the kernel dropped for a full ring (PACKET_STATISTICS)
    JDP_HANDED_BACK = 82        # claimed, not translated, given back to the kernel
    JDP_GSO_SENT = 83           # super-frames handed to the kernel to segment
    JDP_COALESCED = 84          # segments merged into super-frames (software GRO)
    JDP_SLOTS = 96
