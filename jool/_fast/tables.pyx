"""BIB and session tables in shared memory, used by every process of a namespace.

Layout: one segment per instance (a file in /dev/shm named after the network
namespace's inode, so two namespaces never collide) holding a header, the BIB and
session entry arrays, and four open-addressing indexes (linear probing, SipHash
with a random key per instance): BIB by IPv6 and by IPv4 transport address, and
sessions by their IPv6 and by their IPv4 5-tuple. An index slot is a 32-bit word:
an 8-bit hash tag and the 24-bit entry number plus one (0 = empty), so a probe
touches an entry only when the tag matches. Indexes have 1.75 slots per entry
(at most 4/7 full) and any size (multiply-shift reduction). Memory per session
with one BIB entry each: 64 + 2 * 7 (session and its indexes) + 32 + 2 * 7 (BIB)
= 124 bytes, plus a fixed ~1.3 MB (event ring, stored SYNs).

Concurrency: readers never lock; writers take one lock per segment.
* The packets that dominate a translator's load are those of established flows.
  Their path is a lock-free lookup in a session index: each session entry carries
  a seqlock word, a reader copies the entry and accepts the copy only if the word
  was even and unchanged; then it refreshes the entry's timestamp with a plain
  atomic store. No shared cache line is written except the flow's own entry, so
  established traffic scales with the number of workers.
* Everything that creates, removes or changes the state of an entry (new flows,
  TCP state transitions, expiry, static entries) runs under the segment's writer
  lock, which makes the BIB's two indexes, the session's two indexes and the
  per-BIB session lists change together. A reader that misses while a writer
  moves slots (deletion shifts entries back) falls back to the locked path, which
  looks again before creating anything: so two workers that see the first packets
  of one flow end with one BIB entry and one session.
* Sharding by worker was the alternative (DESIGN.md): it needs the fanout to steer
  both directions of a flow and every static BIB entry to the same shard, which a
  static entry's independent IPv6 and IPv4 addresses do not allow.
* The lock word holds the holder's pid; a waiter takes the lock over from a holder
  that died (a worker killed while creating a session).
"""

import ipaddress
import mmap
import os
import secrets

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memcmp, memset

from jool._fast.atomics cimport (jool_load32, jool_load32_relaxed, jool_store32,
                                 jool_store32_relaxed, jool_fence_acquire, jool_getpid,
                                 jool_load64, jool_store64, jool_xchg32, lock_acquire, lock_release,
                                 seq_write_begin, seq_write_end, jool_prefetch)
from jool._fast.siphash cimport siphash24
from jool._fast.wire cimport same16, same4

cnp.import_array()

MAGIC = 0x3436544146534f4a      # "JOSFAT64"
VERSION = 2
SHM_DIR = os.environ.get("JOOL_SHM_DIR", "/dev/shm")
DEFAULT_CAPACITY = 1 << 20
DEFAULT_SO_CAPACITY = 256
DEFAULT_EVENT_CAPACITY = 1 << 14
PROTO_NAMES = {6: "TCP", 17: "UDP", 1: "ICMP"}
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1}
TCP_STATE_NAMES = ("CLOSED", "V4_INIT", "V6_INIT", "ESTABLISHED", "V4_FIN_RCV",
                   "V6_FIN_RCV", "V4_FIN_V6_FIN_RCV", "TRANS")


cdef inline uint8_t proto_slot(uint8_t proto) noexcept nogil:
    return 0 if proto == 6 else (1 if proto == 17 else 2)


cdef void lock(View* t) noexcept nogil:
    lock_acquire(&t.h.lock, t.me)


cdef void unlock(View* t) noexcept nogil:
    lock_release(&t.h.lock)


# ---------------------------------------------------------------- keys and hashing

cdef packed struct Key6:            # a session by its IPv6 side, or a BIB entry (dst4 = 0)
    uint8_t addr[16]
    uint8_t dst4[4]
    uint16_t port
    uint16_t dport
    uint8_t proto
    uint8_t kind                    # 1 session, 2 BIB: the indexes never mix
    uint8_t pad[6]


cdef packed struct Key4:
    uint8_t addr[4]
    uint8_t dst4[4]
    uint16_t port
    uint16_t dport
    uint8_t proto
    uint8_t kind
    uint8_t pad[2]


cdef inline uint64_t hash6(View* t, const uint8_t* addr, uint16_t port, const uint8_t* dst4,
                           uint16_t dport, uint8_t proto, uint8_t kind) noexcept nogil:
    cdef Key6 k
    memset(&k, 0, sizeof(Key6))
    memcpy(k.addr, addr, 16)
    if dst4 != NULL:
        memcpy(k.dst4, dst4, 4)
    k.port = port
    k.dport = dport
    k.proto = proto
    k.kind = kind
    return siphash24(t.h.key, <const uint8_t*>&k, sizeof(Key6))


cdef inline uint64_t hash4(View* t, const uint8_t* addr, uint16_t port, const uint8_t* dst4,
                           uint16_t dport, uint8_t proto, uint8_t kind) noexcept nogil:
    cdef Key4 k
    memset(&k, 0, sizeof(Key4))
    memcpy(k.addr, addr, 4)
    if dst4 != NULL:
        memcpy(k.dst4, dst4, 4)
    k.port = port
    k.dport = dport
    k.proto = proto
    k.kind = kind
    return siphash24(t.h.key, <const uint8_t*>&k, sizeof(Key4))


cdef inline uint32_t slot_word(uint64_t h, uint32_t e) noexcept nogil:
    return (<uint32_t>(h >> 56) << 24) | (e + 1)


cdef inline uint64_t sess_hash6(View* t, const Session* s) noexcept nogil:
    return hash6(t, s.src6, s.sport6, s.dst4, s.dport, s.proto, 1)


cdef inline uint64_t sess_hash4(View* t, const Session* s) noexcept nogil:
    return hash4(t, s.src4, s.port4, s.dst4, s.dport, s.proto, 1)


cdef inline uint64_t bib_hash6(View* t, const Bib* b) noexcept nogil:
    return hash6(t, b.src6, b.port6, NULL, 0, b.proto, 2)


cdef inline uint64_t bib_hash4(View* t, const Bib* b) noexcept nogil:
    return hash4(t, b.src4, b.port4, NULL, 0, b.proto, 2)


# ---------------------------------------------------------------- index primitives

cdef void index_insert(uint32_t* idx, uint32_t slots, uint64_t h, uint32_t e) noexcept nogil:
    cdef uint32_t pos = home_of(h, slots)
    while jool_load32_relaxed(&idx[pos]) != 0:
        pos = next_slot(pos, slots)
    jool_store32(&idx[pos], slot_word(h, e))     # release: the entry is complete


cdef void index_delete(View* t, uint32_t* idx, uint32_t slots, uint64_t h, uint32_t e,
                       bint is_session, bint v6) noexcept nogil:
    """Removes entry e, then shifts later members of the probe run back so that no
    lookup ever needs a tombstone (linear probing, backward-shift deletion)."""
    cdef uint32_t pos = home_of(h, slots)
    cdef uint32_t want = slot_word(h, e)
    cdef uint32_t i, j, home, w, other
    cdef uint32_t n = 0
    while jool_load32_relaxed(&idx[pos]) != want:
        if jool_load32_relaxed(&idx[pos]) == 0 or n >= slots:
            return                                  # not indexed (never happens)
        pos = next_slot(pos, slots)
        n += 1
    i = pos
    j = pos
    while True:
        j = next_slot(j, slots)
        w = jool_load32_relaxed(&idx[j])
        if w == 0:
            break
        other = (w & 0xffffff) - 1
        if is_session:
            home = home_of(sess_hash6(t, &t.sess[other]) if v6 else sess_hash4(t, &t.sess[other]), slots)
        else:
            home = home_of(bib_hash6(t, &t.bib[other]) if v6 else bib_hash4(t, &t.bib[other]), slots)
        # Move w back into the hole at i unless its home lies cyclically in (i, j].
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            jool_store32(&idx[i], w)
            i = j
    jool_store32(&idx[i], 0)


# ---------------------------------------------------------------- prefetching

cdef uint64_t session_hash6(View* t, const uint8_t* src6, uint16_t sport6, const uint8_t* dst4,
                            uint16_t dport, uint8_t proto) noexcept nogil:
    return hash6(t, src6, sport6, dst4, dport, proto, 1)


cdef uint64_t session_hash4(View* t, const uint8_t* src4, uint16_t port4, const uint8_t* dst4,
                            uint16_t dport, uint8_t proto) noexcept nogil:
    return hash4(t, src4, port4, dst4, dport, proto, 1)


# ---------------------------------------------------------------- sessions

cdef inline bint read_session(View* t, uint32_t e, Session* snap) noexcept nogil:
    """Copies session e if no writer was changing it meanwhile."""
    cdef Session* s = &t.sess[e]
    cdef uint32_t before = jool_load32(&s.seq)
    if before & 1:
        return False
    memcpy(snap, s, sizeof(Session))
    jool_fence_acquire()
    return jool_load32_relaxed(&s.seq) == before and (snap.flags & S_IN_USE) != 0


cdef uint32_t sess_find6(View* t, const uint8_t* src6, uint16_t sport6, const uint8_t* dst4,
                         uint16_t dport, uint8_t proto, Session* snap) noexcept nogil:
    return sess_find6_hashed(t, hash6(t, src6, sport6, dst4, dport, proto, 1),
                             src6, sport6, dst4, dport, proto, snap)


cdef uint32_t sess_find6_hashed(View* t, uint64_t h, const uint8_t* src6, uint16_t sport6,
                                const uint8_t* dst4, uint16_t dport, uint8_t proto,
                                Session* snap) noexcept nogil:
    """sess_find6 with the key's hash already computed (by the batch prefetch)."""
    cdef uint32_t pos = home_of(h, t.h.sess_slots)
    cdef uint32_t tag = <uint32_t>(h >> 56)
    cdef uint32_t w, e, n
    for n in range(t.h.sess_slots):
        w = jool_load32(&t.sess6[pos])
        if w == 0:
            return NONE
        if (w >> 24) == tag:
            e = (w & 0xffffff) - 1
            if e < t.h.sess_cap and read_session(t, e, snap) and snap.proto == proto \
                    and snap.sport6 == sport6 and snap.dport == dport \
                    and same16(snap.src6, src6) and same4(snap.dst4, dst4):
                return e
        pos = next_slot(pos, t.h.sess_slots)
    return NONE


cdef uint32_t sess_find4(View* t, const uint8_t* src4, uint16_t port4, const uint8_t* dst4,
                         uint16_t dport, uint8_t proto, Session* snap) noexcept nogil:
    return sess_find4_hashed(t, hash4(t, src4, port4, dst4, dport, proto, 1),
                             src4, port4, dst4, dport, proto, snap)


cdef uint32_t sess_find4_hashed(View* t, uint64_t h, const uint8_t* src4, uint16_t port4,
                                const uint8_t* dst4, uint16_t dport, uint8_t proto,
                                Session* snap) noexcept nogil:
    """sess_find4 with the key's hash already computed (by the batch prefetch)."""
    cdef uint32_t pos = home_of(h, t.h.sess_slots)
    cdef uint32_t tag = <uint32_t>(h >> 56)
    cdef uint32_t w, e, n
    for n in range(t.h.sess_slots):
        w = jool_load32(&t.sess4[pos])
        if w == 0:
            return NONE
        if (w >> 24) == tag:
            e = (w & 0xffffff) - 1
            if e < t.h.sess_cap and read_session(t, e, snap) and snap.proto == proto \
                    and snap.port4 == port4 and snap.dport == dport \
                    and same4(snap.src4, src4) and same4(snap.dst4, dst4):
                return e
        pos = next_slot(pos, t.h.sess_slots)
    return NONE


cdef inline void emit_event(View* t, uint8_t kind, const Session* s, uint32_t now) noexcept nogil:
    """Appends to the event ring (writers hold the lock); a full ring counts a loss."""
    cdef uint64_t head = t.h.ev_head
    cdef Event* ev
    if head - jool_load64(&t.h.ev_tail) >= t.h.event_cap:
        t.h.ev_lost += 1
        return
    ev = &t.ev[head % t.h.event_cap]
    ev.kind = kind
    ev.time = now
    memcpy(&ev.s, s, sizeof(Session))
    jool_store64(&t.h.ev_head, head + 1)


cdef uint32_t sess_create(View* t, uint32_t b, const uint8_t* dst4, uint16_t dport,
                          uint8_t state, uint8_t timer, uint32_t now) noexcept nogil:
    """A new session of BIB entry b (the caller holds the lock and checked absence)."""
    cdef Bib* bib = &t.bib[b]
    cdef uint32_t e
    cdef Session* s
    cdef uint32_t seq
    if t.h.sess_free != NONE:
        e = t.h.sess_free
        t.h.sess_free = t.sess[e].bib_next
    elif t.h.sess_hwm < t.h.sess_cap:
        e = t.h.sess_hwm
        t.h.sess_hwm += 1
    else:
        return NONE
    s = &t.sess[e]
    seq = seq_write_begin(&s.seq)
    memcpy(s.src6, bib.src6, 16)
    memcpy(s.dst4, dst4, 4)
    memcpy(s.src4, bib.src4, 4)
    s.sport6 = bib.port6
    s.port4 = bib.port4
    s.dport = dport
    s.proto = bib.proto
    s.state = state
    s.last = now
    s.created = now
    s.bib = b
    s.timer = timer
    s.flags = S_IN_USE
    s.so_slot = 0xffff
    s.bib_prev = NONE
    s.bib_next = bib.sessions
    if bib.sessions != NONE:
        t.sess[bib.sessions].bib_prev = e
    bib.sessions = e
    seq_write_end(&s.seq, seq)
    index_insert(t.sess6, t.h.sess_slots, sess_hash6(t, s), e)
    index_insert(t.sess4, t.h.sess_slots, sess_hash4(t, s), e)
    t.h.sess_count[proto_slot(s.proto)] += 1
    emit_event(t, EV_CREATED, s, now)
    mark_dirty(t, e)
    return e


cdef void sess_set(View* t, uint32_t e, uint8_t state, uint8_t timer, uint32_t now,
                   bint touch) noexcept nogil:
    """State/timer change under the lock; touch = the timer restarts now."""
    cdef Session* s = &t.sess[e]
    cdef uint32_t seq = seq_write_begin(&s.seq)
    s.state = state
    s.timer = timer
    if touch:
        s.last = now
    seq_write_end(&s.seq, seq)
    emit_event(t, EV_UPDATED, s, now)
    mark_dirty(t, e)


cdef void mark_dirty(View* t, uint32_t e) noexcept nogil:
    """Flags e's group of 64 sessions as changed for session sync (jool/_fast/sync.pyx).
    A full-barrier exchange: the consumer clears the word with one too, so either
    it sees this change or the word stays set for its next pass."""
    jool_xchg32(&t.dirty[e >> DIRTY_SHIFT], 1)


cdef void sess_touch(View* t, uint32_t e, uint32_t now) noexcept nogil:
    """Lock-free refresh by a reader: the timestamp, a single atomic store, and the
    group's changed word when it is clear. Read first, written only when clear,
    so workers refreshing neighbouring sessions do not bounce its cache line; a
    refresh racing the consumer's clear by nanoseconds can go unsent until the
    session's next packet (creations and state changes use mark_dirty)."""
    cdef uint32_t* word = &t.dirty[e >> DIRTY_SHIFT]
    jool_store32_relaxed(&t.sess[e].last, now)
    if jool_load32_relaxed(word) == 0:
        jool_store32(word, 1)


cdef void sess_remove(View* t, uint32_t e, uint32_t now) noexcept nogil:
    """Removes session e; a dynamic BIB entry goes with its last session."""
    cdef Session* s = &t.sess[e]
    cdef uint32_t b = s.bib
    cdef uint32_t seq
    if not (s.flags & S_IN_USE):
        return
    if s.flags & S_STORED_SYN and s.so_slot != 0xffff:
        so_free(t, s.so_slot)
    index_delete(t, t.sess6, t.h.sess_slots, sess_hash6(t, s), e, True, True)
    index_delete(t, t.sess4, t.h.sess_slots, sess_hash4(t, s), e, True, False)
    if s.bib_prev != NONE:
        t.sess[s.bib_prev].bib_next = s.bib_next
    else:
        t.bib[b].sessions = s.bib_next
    if s.bib_next != NONE:
        t.sess[s.bib_next].bib_prev = s.bib_prev
    emit_event(t, EV_REMOVED, s, now)
    t.h.sess_count[proto_slot(s.proto)] -= 1
    seq = seq_write_begin(&s.seq)
    s.flags = 0
    s.bib_next = t.h.sess_free
    seq_write_end(&s.seq, seq)
    t.h.sess_free = e
    if t.bib[b].sessions == NONE and not (t.bib[b].flags & B_STATIC):
        bib_remove(t, b, now)


cdef bint bib_has_session_with(View* t, uint32_t b, const uint8_t* dst4) noexcept nogil:
    cdef uint32_t e = t.bib[b].sessions
    cdef uint32_t n = 0
    while e != NONE and n < t.h.sess_cap:
        if memcmp(t.sess[e].dst4, dst4, 4) == 0:
            return True
        e = t.sess[e].bib_next
        n += 1
    return False


# ---------------------------------------------------------------- BIB (writers only)

cdef uint32_t bib_find6(View* t, const uint8_t* src6, uint16_t port6, uint8_t proto) noexcept nogil:
    cdef uint64_t h = hash6(t, src6, port6, NULL, 0, proto, 2)
    cdef uint32_t pos = home_of(h, t.h.bib_slots)
    cdef uint32_t tag = <uint32_t>(h >> 56)
    cdef uint32_t w, e, n
    cdef Bib* b
    for n in range(t.h.bib_slots):
        w = jool_load32(&t.bib6[pos])
        if w == 0:
            return NONE
        if (w >> 24) == tag:
            e = (w & 0xffffff) - 1
            b = &t.bib[e]
            if b.proto == proto and b.port6 == port6 and same16(b.src6, src6):
                return e
        pos = next_slot(pos, t.h.bib_slots)
    return NONE


cdef uint32_t bib_find4(View* t, const uint8_t* src4, uint16_t port4, uint8_t proto) noexcept nogil:
    cdef uint64_t h = hash4(t, src4, port4, NULL, 0, proto, 2)
    cdef uint32_t pos = home_of(h, t.h.bib_slots)
    cdef uint32_t tag = <uint32_t>(h >> 56)
    cdef uint32_t w, e, n
    cdef Bib* b
    for n in range(t.h.bib_slots):
        w = jool_load32(&t.bib4[pos])
        if w == 0:
            return NONE
        if (w >> 24) == tag:
            e = (w & 0xffffff) - 1
            b = &t.bib[e]
            if b.proto == proto and b.port4 == port4 and same4(b.src4, src4):
                return e
        pos = next_slot(pos, t.h.bib_slots)
    return NONE


cdef inline void emit_bib_event(View* t, uint8_t kind, const Bib* b, uint8_t flags,
                                uint32_t now) noexcept nogil:
    cdef Session mapping
    memset(&mapping, 0, sizeof(Session))
    memcpy(mapping.src6, b.src6, 16)
    memcpy(mapping.src4, b.src4, 4)
    mapping.sport6 = b.port6
    mapping.port4 = b.port4
    mapping.proto = b.proto
    mapping.flags = flags               # B_STATIC tells static entries apart
    emit_event(t, kind, &mapping, now)


cdef uint32_t bib_create(View* t, const uint8_t* src6, uint16_t port6, const uint8_t* src4,
                         uint16_t port4, uint8_t proto, bint static, uint32_t now) noexcept nogil:
    cdef uint32_t e
    cdef Bib* b
    if t.h.bib_free != NONE:
        e = t.h.bib_free
        t.h.bib_free = t.bib[e].sessions
    elif t.h.bib_hwm < t.h.bib_cap:
        e = t.h.bib_hwm
        t.h.bib_hwm += 1
    else:
        return NONE
    b = &t.bib[e]
    memcpy(b.src6, src6, 16)
    memcpy(b.src4, src4, 4)
    b.port6 = port6
    b.port4 = port4
    b.proto = proto
    b.flags = B_IN_USE | (B_STATIC if static else 0)
    b.sessions = NONE
    index_insert(t.bib6, t.h.bib_slots, bib_hash6(t, b), e)
    index_insert(t.bib4, t.h.bib_slots, bib_hash4(t, b), e)
    t.h.bib_count[proto_slot(proto)] += 1
    emit_bib_event(t, EV_BIB_CREATED, b, b.flags, now)
    return e


cdef void bib_remove(View* t, uint32_t b, uint32_t now) noexcept nogil:
    cdef Bib* bib = &t.bib[b]
    cdef uint8_t flags = bib.flags
    if not (bib.flags & B_IN_USE):
        return
    bib.flags = B_STATIC            # keeps sess_remove from recursing into us
    bib.flags |= B_IN_USE
    while bib.sessions != NONE:
        sess_remove(t, bib.sessions, now)
    index_delete(t, t.bib6, t.h.bib_slots, bib_hash6(t, bib), b, False, True)
    index_delete(t, t.bib4, t.h.bib_slots, bib_hash4(t, bib), b, False, False)
    t.h.bib_count[proto_slot(bib.proto)] -= 1
    emit_bib_event(t, EV_BIB_REMOVED, bib, flags, now)
    bib.flags = 0
    bib.sessions = t.h.bib_free
    t.h.bib_free = b


# ---------------------------------------------------------------- stored SYNs (spec §9)

cdef uint32_t so_find(View* t, uint8_t kind, const uint8_t* remote4, uint16_t remote_port) noexcept nogil:
    cdef uint32_t i
    for i in range(t.h.so_cap):
        if t.so[i].kind == kind and t.so[i].remote_port == remote_port \
                and memcmp(t.so[i].remote4, remote4, 4) == 0:
            return i
    return NONE


cdef uint32_t so_store(View* t, uint8_t kind, const uint8_t* pkt, uint32_t n, const uint8_t* remote4,
                       uint16_t remote_port, const uint8_t* local4, uint16_t local_port,
                       uint32_t session, uint32_t now) noexcept nogil:
    cdef uint32_t i
    cdef SoSlot* s
    for i in range(t.h.so_cap):
        if t.so[i].kind == 0:
            s = &t.so[i]
            s.kind = kind
            s.length = n if n < SO_BYTES else SO_BYTES
            memcpy(s.packet, pkt, s.length)
            s.stored_at = now
            memcpy(s.remote4, remote4, 4)
            s.remote_port = remote_port
            memcpy(s.local4, local4, 4)
            s.local_port = local_port
            s.session = session
            t.h.so_count += 1
            return i
    return NONE


cdef void so_free(View* t, uint32_t slot) noexcept nogil:
    if slot < t.h.so_cap and t.so[slot].kind != 0:
        t.so[slot].kind = 0
        t.h.so_count -= 1


# ---------------------------------------------------------------- the segment

def netns_id():
    """The inode of this process's network namespace: part of every segment name."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return 0


cdef uint32_t index_slots(uint64_t entries):
    return <uint32_t>((entries * 7 + 3) // 4) + 1


cdef uint64_t align64(uint64_t n):
    return (n + 63) & ~(<uint64_t>63)


cdef class Tables:
    """A handle on one instance's tables: create() makes the segment, attach()
    maps an existing one (another worker, the control process, the CLI)."""

    def __cinit__(self):
        self._mm = None
        self.owner = False
        self.name = ""

    @staticmethod
    def create(uint64_t capacity=DEFAULT_CAPACITY, bib_capacity=None, name=None,
               uint32_t so_capacity=DEFAULT_SO_CAPACITY,
               uint32_t event_capacity=DEFAULT_EVENT_CAPACITY):
        cdef Tables t = Tables.__new__(Tables)
        cdef uint64_t bib_cap = capacity if bib_capacity is None else bib_capacity
        cdef Header hdr
        cdef uint64_t off
        if not 1 <= capacity <= MAX_ENTRIES or not 1 <= bib_cap <= MAX_ENTRIES:
            raise ValueError(f"capacity must be within 1-{MAX_ENTRIES}")
        if name is None:
            name = f"jool64-{netns_id()}-{os.getpid()}-{secrets.token_hex(4)}"
        memset(&hdr, 0, sizeof(Header))
        hdr.magic = MAGIC
        hdr.version = VERSION
        hdr.header_size = sizeof(Header)
        hdr.sess_cap = capacity
        hdr.bib_cap = bib_cap
        # Indexes at most 4/7 full: short probe runs at 4 bytes x 1.75 per entry.
        hdr.sess_slots = index_slots(capacity)
        hdr.bib_slots = index_slots(bib_cap)
        hdr.so_cap = so_capacity
        hdr.event_cap = event_capacity
        keys = np.frombuffer(secrets.token_bytes(32), dtype=np.uint64)
        hdr.key[0] = keys[0]
        hdr.key[1] = keys[1]
        hdr.fkey[0] = keys[2]
        hdr.fkey[1] = keys[3]
        off = align64(sizeof(Header))
        hdr.off_bib = off
        off = align64(off + bib_cap * sizeof(Bib))
        hdr.off_bib6 = off
        off = align64(off + <uint64_t>hdr.bib_slots * 4)
        hdr.off_bib4 = off
        off = align64(off + <uint64_t>hdr.bib_slots * 4)
        hdr.off_sess = off
        off = align64(off + capacity * sizeof(Session))
        hdr.off_sess6 = off
        off = align64(off + <uint64_t>hdr.sess_slots * 4)
        hdr.off_sess4 = off
        off = align64(off + <uint64_t>hdr.sess_slots * 4)
        hdr.off_so = off
        off = align64(off + <uint64_t>so_capacity * sizeof(SoSlot))
        hdr.off_events = off
        off = align64(off + <uint64_t>event_capacity * sizeof(Event))
        hdr.off_dirty = off
        off = align64(off + ((capacity >> DIRTY_SHIFT) + 1) * 4)
        hdr.total = off
        hdr.lock = 0
        hdr.bib_free = NONE
        hdr.sess_free = NONE
        path = os.path.join(SHM_DIR, name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, hdr.total)     # zero-filled pages, allocated when touched
            t._map(fd, hdr.total)
        finally:
            os.close(fd)
        memcpy(t.v.h, &hdr, sizeof(Header))
        t._bind()
        t.name = name
        t.owner = True
        return t

    @staticmethod
    def attach(name):
        cdef Tables t = Tables.__new__(Tables)
        path = os.path.join(SHM_DIR, name)
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            t._map(fd, size)
        finally:
            os.close(fd)
        if t.v.h.magic != MAGIC or t.v.h.version != VERSION or t.v.h.total != size:
            t.close()
            raise ValueError(f"{name} is not a jool table segment of this version")
        t._bind()
        t.name = name
        return t

    def _map(self, int fd, uint64_t size):
        cdef cnp.uint8_t[::1] view
        self._mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            self._mm.madvise(mmap.MADV_HUGEPAGE)
        except (AttributeError, OSError):
            pass
        self._arr = np.frombuffer(self._mm, dtype=np.uint8)
        view = self._arr
        self.v.h = <Header*>&view[0]

    def _bind(self):
        cdef uint8_t* base = <uint8_t*>self.v.h
        cdef Header* h = self.v.h
        self.v.bib = <Bib*>(base + h.off_bib)
        self.v.bib6 = <uint32_t*>(base + h.off_bib6)
        self.v.bib4 = <uint32_t*>(base + h.off_bib4)
        self.v.sess = <Session*>(base + h.off_sess)
        self.v.sess6 = <uint32_t*>(base + h.off_sess6)
        self.v.sess4 = <uint32_t*>(base + h.off_sess4)
        self.v.so = <SoSlot*>(base + h.off_so)
        self.v.ev = <Event*>(base + h.off_events)
        self.v.dirty = <uint32_t*>(base + h.off_dirty)
        self.v.me = jool_getpid()

    cdef View* view(self):
        if self._mm is None:
            raise ValueError("tables are closed")
        self.v.me = jool_getpid()       # a forked child takes the lock as itself
        return &self.v

    def close(self):
        """Unmaps (the segment stays until unlink())."""
        if self._mm is not None:
            self._arr = None
            try:
                self._mm.close()
            except BufferError:
                pass                    # a numpy view is still alive; the GC unmaps
            self._mm = None

    def unlink(self):
        try:
            os.unlink(os.path.join(SHM_DIR, self.name))
        except FileNotFoundError:
            pass

    @property
    def size(self):
        return self.v.h.total if self._mm is not None else 0

    @property
    def capacity(self):
        return self.v.h.sess_cap

    @property
    def bib_capacity(self):
        return self.v.h.bib_cap

    def counts(self):
        """(BIB entries, sessions), all protocols."""
        cdef Header* h = self.view().h
        return (h.bib_count[0] + h.bib_count[1] + h.bib_count[2],
                h.sess_count[0] + h.sess_count[1] + h.sess_count[2])

    def counts_by_protocol(self):
        """{"tcp"|"udp"|"icmp": (BIB entries, sessions)}: what the metrics show per
        protocol (jool/control/metrics.py), read without walking the tables."""
        cdef Header* h = self.view().h
        return {name: (h.bib_count[i], h.sess_count[i])
                for i, name in enumerate(("tcp", "udp", "icmp"))}

    @property
    def events_lost(self):
        return self.view().h.ev_lost

    def check(self):
        """Verifies every invariant of the tables (under the lock); returns a list of
        problems, empty when consistent. For tests and `jool` diagnostics."""
        cdef View* t = self.view()
        cdef uint32_t e, n_b = 0, n_s = 0, found, cnt
        cdef Session snap
        problems = []
        lock(t)
        try:
            bib_seen = {}
            for e in range(t.h.bib_hwm):
                if not (t.bib[e].flags & B_IN_USE):
                    continue
                n_b += 1
                if bib_find6(t, t.bib[e].src6, t.bib[e].port6, t.bib[e].proto) != e:
                    problems.append(f"BIB {e} not found by its IPv6 key")
                if bib_find4(t, t.bib[e].src4, t.bib[e].port4, t.bib[e].proto) != e:
                    problems.append(f"BIB {e} not found by its IPv4 key")
                k6 = (bytes(t.bib[e].src6[:16]), t.bib[e].port6, t.bib[e].proto)
                k4 = (bytes(t.bib[e].src4[:4]), t.bib[e].port4, t.bib[e].proto)
                for k in (("6",) + k6, ("4",) + k4):
                    if k in bib_seen:
                        problems.append(f"BIB {e} duplicates {bib_seen[k]}")
                    bib_seen[k] = e
                if t.bib[e].sessions == NONE and not (t.bib[e].flags & B_STATIC):
                    problems.append(f"dynamic BIB {e} without sessions")
            for e in range(t.h.sess_hwm):
                if not (t.sess[e].flags & S_IN_USE):
                    continue
                n_s += 1
                s = &t.sess[e]
                if s.seq & 1:
                    problems.append(f"session {e} left half-written")
                if not (t.bib[s.bib].flags & B_IN_USE):
                    problems.append(f"session {e} belongs to a free BIB entry")
                elif memcmp(t.bib[s.bib].src6, s.src6, 16) != 0 or t.bib[s.bib].port6 != s.sport6 \
                        or memcmp(t.bib[s.bib].src4, s.src4, 4) != 0 or t.bib[s.bib].port4 != s.port4:
                    problems.append(f"session {e} disagrees with its BIB entry")
                if sess_find6(t, s.src6, s.sport6, s.dst4, s.dport, s.proto, &snap) != e:
                    problems.append(f"session {e} not found by its IPv6 key")
                if sess_find4(t, s.src4, s.port4, s.dst4, s.dport, s.proto, &snap) != e:
                    problems.append(f"session {e} not found by its IPv4 key")
            cnt = 0
            for e in range(t.h.bib_slots):
                cnt += t.bib6[e] != 0
            if cnt != n_b:
                problems.append(f"BIB IPv6 index holds {cnt} entries, table {n_b}")
            cnt = 0
            for e in range(t.h.bib_slots):
                cnt += t.bib4[e] != 0
            if cnt != n_b:
                problems.append(f"BIB IPv4 index holds {cnt} entries, table {n_b}")
            cnt = 0
            for e in range(t.h.sess_slots):
                cnt += t.sess6[e] != 0
            if cnt != n_s:
                problems.append(f"session IPv6 index holds {cnt} entries, table {n_s}")
            cnt = 0
            for e in range(t.h.sess_slots):
                cnt += t.sess4[e] != 0
            if cnt != n_s:
                problems.append(f"session IPv4 index holds {cnt} entries, table {n_s}")
            if n_b != t.h.bib_count[0] + t.h.bib_count[1] + t.h.bib_count[2]:
                problems.append("BIB count disagrees with the table")
            if n_s != t.h.sess_count[0] + t.h.sess_count[1] + t.h.sess_count[2]:
                problems.append("session count disagrees with the table")
        finally:
            unlock(t)
        return problems

    def bib_list(self, proto):
        """[(v6addr, v6port, v4addr, v4port, is_static)] of one protocol, ordered by
        IPv4 transport address as Jool displays them."""
        cdef View* t = self.view()
        cdef uint32_t e
        cdef uint8_t p = PROTO_NUMBERS[proto.lower()] if isinstance(proto, str) else proto
        rows = []
        lock(t)
        try:
            for e in range(t.h.bib_hwm):
                if t.bib[e].flags & B_IN_USE and t.bib[e].proto == p:
                    rows.append((str(ipaddress.IPv6Address(bytes(t.bib[e].src6[:16]))), t.bib[e].port6,
                                 str(ipaddress.IPv4Address(bytes(t.bib[e].src4[:4]))), t.bib[e].port4,
                                 bool(t.bib[e].flags & B_STATIC)))
        finally:
            unlock(t)
        rows.sort(key=lambda r: (ipaddress.IPv4Address(r[2]), r[3]))
        return rows

    def find_session(self, proto, src6, uint16_t sport6, dst4, uint16_t dport):
        """One session by its IPv6 side (as session_records() gives it), or None."""
        cdef View* t = self.view()
        cdef uint8_t p = PROTO_NUMBERS[proto.lower()] if isinstance(proto, str) else proto
        cdef bytes a6 = ipaddress.IPv6Address(src6).packed
        cdef bytes a4 = ipaddress.IPv4Address(dst4).packed
        cdef Session snap
        cdef uint32_t e = sess_find6(t, a6, sport6, a4, dport, p, &snap)
        if e == NONE:
            return None
        return dict(src6=bytes(snap.src6[:16]), sport6=snap.sport6, dst4=bytes(snap.dst4[:4]),
                    dport=snap.dport, src4=bytes(snap.src4[:4]), port4=snap.port4,
                    proto=snap.proto, state=snap.state, timer=snap.timer, last=snap.last)

    def session_records(self, proto):
        """Raw session fields of one protocol (the pipeline adds pool6 and expiry)."""
        cdef View* t = self.view()
        cdef uint32_t e
        cdef uint8_t p = PROTO_NUMBERS[proto.lower()] if isinstance(proto, str) else proto
        rows = []
        lock(t)
        try:
            for e in range(t.h.sess_hwm):
                s = &t.sess[e]
                if s.flags & S_IN_USE and s.proto == p:
                    rows.append(dict(src6=bytes(s.src6[:16]), sport6=s.sport6, dst4=bytes(s.dst4[:4]),
                                     dport=s.dport, src4=bytes(s.src4[:4]), port4=s.port4,
                                     proto=s.proto, state=s.state, timer=s.timer, last=s.last,
                                     stored_syn=bool(s.flags & S_STORED_SYN)))
        finally:
            unlock(t)
        return rows
