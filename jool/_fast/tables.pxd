# BIB and session tables in one shared-memory segment (see tables.pyx for the why).

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from jool._fast.atomics cimport jool_load32_relaxed, jool_prefetch

cdef enum:
    NONE = 0xffffffff
    MAX_ENTRIES = 0xfffffe          # indexes hold 24-bit entry numbers
    DIRTY_SHIFT = 6                 # one "changed" word per 64 sessions (session sync)
    PREFETCH_PROBES = 8             # index slots a batch prefetch looks through
    SO_BYTES = 576                  # a stored SYN is kept up to what an ICMPv4 error quotes
    # session flags
    S_IN_USE = 1
    S_STORED_SYN = 2                # a type 2 simultaneous-open SYN is held for it
    # BIB flags
    B_IN_USE = 1
    B_STATIC = 2
    # session timers (spec §5.2)
    TIMER_EST = 0
    TIMER_TRANS = 1
    TIMER_SYN4 = 2
    # TCP states (spec §7); UDP and ICMP sessions sit in ESTABLISHED
    TCP_CLOSED = 0
    TCP_V4_INIT = 1
    TCP_V6_INIT = 2
    TCP_ESTABLISHED = 3
    TCP_V4_FIN_RCV = 4
    TCP_V6_FIN_RCV = 5
    TCP_V4_FIN_V6_FIN_RCV = 6
    TCP_TRANS = 7
    # session events
    EV_CREATED = 1
    EV_UPDATED = 2
    EV_REMOVED = 3
    # BIB entry events (for logging-bib): the record's session fields carry the
    # mapping (src6, sport6, src4, port4, proto), the peer fields are zero
    EV_BIB_CREATED = 4
    EV_BIB_REMOVED = 5
    # stored SYN kinds (spec §9)
    SO_TYPE1 = 1
    SO_TYPE2 = 2


cdef packed struct Session:         # 64 bytes
    uint8_t src6[16]                # IPv6 client
    uint8_t dst4[4]                 # IPv4 peer (the IPv6 side sees pool6 + dst4)
    uint8_t src4[4]                 # pool4 address
    uint16_t sport6                 # client port / ICMP identifier
    uint16_t port4                  # pool4 port / ICMP identifier
    uint16_t dport                  # peer port (ICMP: equal to port4)
    uint8_t proto
    uint8_t state
    uint32_t seq                    # seqlock: odd while a writer changes the entry
    uint32_t last                   # last update, milliseconds (wrapping)
    uint32_t bib                    # owning BIB entry
    uint32_t bib_next               # the BIB's session list; the free list when unused
    uint32_t bib_prev
    uint8_t timer
    uint8_t flags
    uint16_t so_slot                # stored SYN slot (type 2)
    uint32_t created
    uint32_t reserved


cdef packed struct Bib:             # 32 bytes
    uint8_t src6[16]
    uint8_t src4[4]
    uint16_t port6
    uint16_t port4
    uint8_t proto
    uint8_t flags
    uint16_t reserved
    uint32_t sessions               # head of the session list; the free list when unused


cdef struct SoSlot:
    uint8_t kind                    # 0 free, SO_TYPE1, SO_TYPE2
    uint8_t reserved
    uint16_t length
    uint32_t stored_at
    uint8_t remote4[4]              # the SYN's source
    uint16_t remote_port
    uint8_t local4[4]               # the SYN's destination (a pool4 transport address)
    uint16_t local_port
    uint32_t session                # type 2: the session holding it
    uint8_t packet[SO_BYTES]


cdef packed struct Event:           # 72 bytes
    uint8_t kind
    uint8_t reserved[3]
    uint32_t time
    Session s


cdef struct Header:
    uint64_t magic
    uint32_t version
    uint32_t header_size
    uint32_t sess_cap
    uint32_t bib_cap
    uint32_t sess_slots
    uint32_t bib_slots
    uint32_t so_cap
    uint32_t event_cap
    uint64_t key[2]                 # index hash key
    uint64_t fkey[2]                # RFC 6056 F() key
    uint64_t off_bib
    uint64_t off_bib6
    uint64_t off_bib4
    uint64_t off_sess
    uint64_t off_sess6
    uint64_t off_sess4
    uint64_t off_so
    uint64_t off_events
    uint64_t off_dirty
    uint64_t total
    uint32_t pad0[8]
    uint32_t lock                   # the writer lock (pid of the holder), own cache line
    uint32_t pad1[15]
    uint32_t bib_count[3]           # per protocol: TCP, UDP, ICMP
    uint32_t sess_count[3]
    uint32_t bib_free
    uint32_t sess_free
    uint32_t bib_hwm                # entries never used yet start here
    uint32_t sess_hwm
    uint32_t so_count
    uint32_t pad2
    uint64_t next_ephemeral         # RFC 6056 algorithm 3's counter
    uint64_t ev_head                # written by the tables' writers
    uint64_t ev_tail                # written by the consumer
    uint64_t ev_lost
    uint64_t so_full


cdef struct View:
    Header* h
    Bib* bib
    uint32_t* bib6
    uint32_t* bib4
    Session* sess
    uint32_t* sess6
    uint32_t* sess4
    SoSlot* so
    Event* ev
    uint32_t* dirty
    uint32_t me                     # this process's pid, for the lock


cdef uint8_t proto_slot(uint8_t proto) noexcept nogil
cdef void lock(View* t) noexcept nogil
cdef void unlock(View* t) noexcept nogil

cdef uint64_t session_hash6(View* t, const uint8_t* src6, uint16_t sport6, const uint8_t* dst4,
                            uint16_t dport, uint8_t proto) noexcept nogil
cdef uint64_t session_hash4(View* t, const uint8_t* src4, uint16_t port4, const uint8_t* dst4,
                            uint16_t dport, uint8_t proto) noexcept nogil


cdef inline uint32_t home_of(uint64_t h, uint32_t slots) noexcept nogil:
    """Lemire's multiply-shift reduction: indexes need not be powers of two."""
    return <uint32_t>(((h & 0xffffffffULL) * slots) >> 32)


cdef inline uint32_t next_slot(uint32_t pos, uint32_t slots) noexcept nogil:
    pos += 1
    return 0 if pos == slots else pos


# Prefetching, inline here so that a batch's prefetches run back to back
# (jool/_fast/nat64.pyx, pipeline.pyx run_batch).
cdef inline void prefetch_slot(View* t, bint v6, uint64_t h) noexcept nogil:
    """First stage of a batch lookup: bring the index slot towards the cache."""
    jool_prefetch(&(t.sess6 if v6 else t.sess4)[home_of(h, t.h.sess_slots)])


cdef inline uint32_t tagged_entry(View* t, bint v6, uint64_t h) noexcept nogil:
    """Second stage of a batch lookup: the slot is (nearly) there; the entry of the
    first slot of the probe run whose tag matches, or NONE (the entry to prefetch:
    at 4/7 load an entry often sits a slot or two past its home, nearly always in
    the same cache line)."""
    cdef uint32_t* idx = t.sess6 if v6 else t.sess4
    cdef uint32_t pos = home_of(h, t.h.sess_slots)
    cdef uint32_t tag = <uint32_t>(h >> 56)
    cdef uint32_t w, n
    for n in range(PREFETCH_PROBES):
        w = jool_load32_relaxed(&idx[pos])
        if w == 0:
            return NONE
        if (w >> 24) == tag and (w & 0xffffff) <= t.h.sess_cap:
            return (w & 0xffffff) - 1
        pos = next_slot(pos, t.h.sess_slots)
    return NONE

cdef uint32_t sess_find6(View* t, const uint8_t* src6, uint16_t sport6, const uint8_t* dst4,
                         uint16_t dport, uint8_t proto, Session* snap) noexcept nogil
cdef uint32_t sess_find4(View* t, const uint8_t* src4, uint16_t port4, const uint8_t* dst4,
                         uint16_t dport, uint8_t proto, Session* snap) noexcept nogil
cdef uint32_t sess_find6_hashed(View* t, uint64_t h, const uint8_t* src6, uint16_t sport6,
                                const uint8_t* dst4, uint16_t dport, uint8_t proto,
                                Session* snap) noexcept nogil
cdef uint32_t sess_find4_hashed(View* t, uint64_t h, const uint8_t* src4, uint16_t port4,
                                const uint8_t* dst4, uint16_t dport, uint8_t proto,
                                Session* snap) noexcept nogil
cdef uint32_t sess_create(View* t, uint32_t bib, const uint8_t* dst4, uint16_t dport,
                          uint8_t state, uint8_t timer, uint32_t now) noexcept nogil
cdef void sess_set(View* t, uint32_t e, uint8_t state, uint8_t timer, uint32_t now,
                   bint touch) noexcept nogil
cdef void mark_dirty(View* t, uint32_t e) noexcept nogil
cdef void sess_touch(View* t, uint32_t e, uint32_t now) noexcept nogil
cdef void sess_remove(View* t, uint32_t e, uint32_t now) noexcept nogil
cdef bint bib_has_session_with(View* t, uint32_t b, const uint8_t* dst4) noexcept nogil

cdef uint32_t bib_find6(View* t, const uint8_t* src6, uint16_t port6, uint8_t proto) noexcept nogil
cdef uint32_t bib_find4(View* t, const uint8_t* src4, uint16_t port4, uint8_t proto) noexcept nogil
cdef inline bint sess_full(View* t) noexcept nogil:
    """Every session entry in use (read without the lock: a hint, which a removal
    may make stale a moment later)."""
    return jool_load32_relaxed(&t.h.sess_free) == NONE and \
        jool_load32_relaxed(&t.h.sess_hwm) >= t.h.sess_cap
cdef uint32_t bib_create(View* t, const uint8_t* src6, uint16_t port6, const uint8_t* src4,
                         uint16_t port4, uint8_t proto, bint static, uint32_t now) noexcept nogil
cdef void bib_remove(View* t, uint32_t b, uint32_t now) noexcept nogil

cdef uint32_t so_find(View* t, uint8_t kind, const uint8_t* remote4, uint16_t remote_port) noexcept nogil
cdef uint32_t so_store(View* t, uint8_t kind, const uint8_t* pkt, uint32_t n, const uint8_t* remote4,
                       uint16_t remote_port, const uint8_t* local4, uint16_t local_port,
                       uint32_t session, uint32_t now) noexcept nogil
cdef void so_free(View* t, uint32_t slot) noexcept nogil

cdef class Tables:
    cdef View v
    cdef object _mm
    cdef object _arr
    cdef readonly str name
    cdef readonly bint owner
    cdef View* view(self)
