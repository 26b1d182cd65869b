"""Session synchronization kernels (spec/joold.md): what the tables changed since
it was last sent, and the sessions a peer sent us.

Outgoing. Jool 4.1.9 appends a snapshot to its sync buffer for every translated
packet. Here the tables themselves are the queue: every creation, state change
and refresh flags its group of 64 sessions in a "changed" word (tables.pyx
mark_dirty / sess_touch), and collect() walks the flagged groups, comparing each
session's seqlock word and timestamp with what was last sent (two arrays the
sender keeps). So the workers' only cost is one word written when it was clear,
a burst of packets on one flow becomes one record, and nothing can overflow: a
change that is not sent yet stays flagged in the table until it is.
A refresh alone (same state, newer timestamp) is resent once the peer's idea of
the session's expiry lags by REFRESH_DIVISOR-th of its timeout, so a peer expires
an idle session at most that much early and never an active one.

Incoming. install() applies records as spec/joold.md §3 says, each on its own,
and marks what it wrote as already sent, so received sessions are not echoed.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from jool._fast.atomics cimport (jool_load32, jool_load32_relaxed, jool_store32,
                                 jool_store32_relaxed, jool_xchg32, jool_fence_acquire,
                                 seq_write_begin, seq_write_end)
from jool._fast.rfc6052 cimport Prefix6, rfc6052_embed
from jool._fast.tables cimport (Tables, View, Session, Bib, lock, unlock, NONE,
                                DIRTY_SHIFT, S_IN_USE, TIMER_EST, TIMER_TRANS, TIMER_SYN4,
                                TCP_CLOSED, TCP_V4_INIT, TCP_V6_INIT, TCP_ESTABLISHED,
                                TCP_V4_FIN_RCV, TCP_V6_FIN_RCV, TCP_V4_FIN_V6_FIN_RCV,
                                TCP_TRANS, SO_TYPE1, B_STATIC, sess_find6, sess_create,
                                mark_dirty, bib_find6, bib_find4, bib_create, bib_remove,
                                so_find, so_free)

cnp.import_array()

REFRESH_DIVISOR = 8

cdef enum:
    GROUP = 64              # sessions per changed-word (1 << DIRTY_SHIFT)
    RECORD_BYTES = 140
    # field offsets of a record (spec/joold.md §4.3; jool/sync/wire.py RECORD)
    OFF_SRC6 = 12
    OFF_SRC6_PORT = 32
    OFF_DST6 = 44
    OFF_DST6_PORT = 64
    OFF_SRC4 = 76
    OFF_SRC4_PORT = 84
    OFF_DST4 = 96
    OFF_DST4_PORT = 104
    OFF_PROTO = 112
    OFF_STATE = 120
    OFF_TIMER = 128
    OFF_EXPIRES = 136
    WIRE_TCP = 0
    WIRE_UDP = 1
    WIRE_ICMP = 2
    PROTO_TCP = 6
    PROTO_UDP = 17
    PROTO_ICMP = 1
    LOCK_BATCH = 64         # records installed per hold of the writer lock
    SYN4_TIMEOUT_MS = 6000  # the v4-initiated SYN timer (spec/behaviour.md)


cdef struct Timeouts:
    uint32_t tcp_est
    uint32_t tcp_trans
    uint32_t udp
    uint32_t icmp


# Our TCP states (tables.pxd) <-> the wire's (spec/joold.md §4.3).
cdef uint8_t[8] STATE_TO_WIRE
STATE_TO_WIRE[:] = [0, 2, 1, 0, 3, 4, 5, 6]
cdef uint8_t[7] STATE_FROM_WIRE
STATE_FROM_WIRE[:] = [TCP_ESTABLISHED, TCP_V6_INIT, TCP_V4_INIT, TCP_V4_FIN_RCV,
                      TCP_V6_FIN_RCV, TCP_V4_FIN_V6_FIN_RCV, TCP_TRANS]


cdef inline uint32_t timeout_of(const Timeouts* to, uint8_t proto, uint8_t timer) noexcept nogil:
    if timer == TIMER_SYN4:
        return SYN4_TIMEOUT_MS
    if timer == TIMER_TRANS:
        return to.tcp_trans
    if proto == PROTO_TCP:
        return to.tcp_est
    if proto == PROTO_UDP:
        return to.udp
    return to.icmp


cdef inline void put16(uint8_t* p, uint16_t v) noexcept nogil:
    memcpy(p, &v, 2)                # host byte order, as Jool sends it


cdef inline void put32(uint8_t* p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)


cdef inline uint16_t get16(const uint8_t* p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v


cdef inline uint32_t get32(const uint8_t* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef void write_record(uint8_t* r, const Session* s, const Prefix6* pool6, uint32_t now,
                       const Timeouts* to) noexcept nogil:
    """The fields of one record; the attribute headers are wire.encode()'s."""
    cdef uint32_t timeout = timeout_of(to, s.proto, s.timer)
    cdef uint16_t peer_port6 = s.sport6 if s.proto == PROTO_ICMP else s.dport
    cdef uint32_t age = now - s.last
    if age >= <uint32_t>0x80000000:
        age = 0                     # a worker stamped it after our clock reading
    memcpy(r + OFF_SRC6, s.src6, 16)
    put16(r + OFF_SRC6_PORT, s.sport6)
    rfc6052_embed(pool6, s.dst4, r + OFF_DST6)
    put16(r + OFF_DST6_PORT, peer_port6)
    memcpy(r + OFF_SRC4, s.src4, 4)
    put16(r + OFF_SRC4_PORT, s.port4)
    memcpy(r + OFF_DST4, s.dst4, 4)
    put16(r + OFF_DST4_PORT, s.dport)
    r[OFF_PROTO] = WIRE_TCP if s.proto == PROTO_TCP else (WIRE_UDP if s.proto == PROTO_UDP
                                                          else WIRE_ICMP)
    r[OFF_STATE] = STATE_TO_WIRE[s.state & 7] if s.proto == PROTO_TCP else 0
    r[OFF_TIMER] = s.timer if s.timer <= TIMER_SYN4 else TIMER_EST
    put32(r + OFF_EXPIRES, timeout - age if age < timeout else 0)


cdef uint32_t collect_groups(View* t, uint32_t* seq_sent, uint32_t* last_sent, uint8_t* out,
                             uint32_t out_cap, const Prefix6* pool6, uint32_t now,
                             const Timeouts* to, uint32_t divisor, uint32_t* group,
                             uint32_t* scanned) noexcept nogil:
    cdef uint32_t groups = (t.h.sess_hwm + GROUP - 1) >> DIRTY_SHIFT
    cdef uint32_t g = group[0], e, first, last_e, seq1, seq2, gap
    cdef uint32_t n = 0
    cdef bint keep
    cdef Session snap
    cdef Session* s
    while g < groups and n + GROUP <= out_cap:
        if jool_load32_relaxed(&t.dirty[g]) == 0 or jool_xchg32(&t.dirty[g], 0) == 0:
            g += 1
            continue
        scanned[0] += 1
        keep = False
        first = g << DIRTY_SHIFT
        last_e = first + GROUP
        if last_e > t.h.sess_hwm:
            last_e = t.h.sess_hwm
        for e in range(first, last_e):
            s = &t.sess[e]
            seq1 = jool_load32(&s.seq)
            if seq1 & 1:
                keep = True             # a writer is in the middle of it: next pass
                continue
            memcpy(&snap, s, sizeof(Session))
            jool_fence_acquire()
            seq2 = jool_load32(&s.seq)
            if seq2 != seq1:
                keep = True
                continue
            snap.last = jool_load32_relaxed(&s.last)
            if not (snap.flags & S_IN_USE):
                continue
            if seq1 == seq_sent[e]:
                if snap.last == last_sent[e]:
                    continue
                gap = timeout_of(to, snap.proto, snap.timer) // divisor
                if <uint32_t>(snap.last - last_sent[e]) < gap:
                    keep = True         # a refresh the peer does not need yet
                    continue
            write_record(out + <uint64_t>n * RECORD_BYTES, &snap, pool6, now, to)
            seq_sent[e] = seq1
            last_sent[e] = snap.last
            n += 1
        if keep:
            jool_store32(&t.dirty[g], 1)
        g += 1
    group[0] = g
    return n


def collect(Tables tables not None, cnp.uint32_t[::1] seq_sent, cnp.uint32_t[::1] last_sent,
            cnp.uint8_t[:, ::1] out, pool6, uint32_t now, timeouts, uint32_t first_group=0,
            uint32_t divisor=REFRESH_DIVISOR):
    """pool6: (address bytes, prefix length). Writes the changed sessions' fields into out (n x 140, RECORD layout) from
    group first_group on; returns (records written, next group, groups scanned).
    next group == groups() when the pass reached the end of the table."""
    cdef View* t = tables.view()
    cdef Timeouts to
    cdef uint32_t group = first_group, scanned = 0, n
    cdef Prefix6 prefix
    address, length = pool6
    if len(address) != 16 or length not in (32, 40, 48, 56, 64, 96):
        raise ValueError("pool6 must be (16 address bytes, an RFC 6052 length)")
    memcpy(prefix.addr, <const uint8_t*>address, 16)
    prefix.length = length
    if seq_sent.shape[0] < t.h.sess_cap or last_sent.shape[0] < t.h.sess_cap:
        raise ValueError("the sent-state arrays are smaller than the table")
    if out.shape[1] != RECORD_BYTES:
        raise ValueError("out must be n x 140 bytes")
    to.tcp_est, to.tcp_trans, to.udp, to.icmp = timeouts
    if out.shape[0] == 0:
        return 0, group, 0
    with nogil:
        n = collect_groups(t, &seq_sent[0], &last_sent[0], &out[0, 0], out.shape[0],
                           &prefix, now, &to, divisor if divisor else 1, &group, &scanned)
    return n, group, scanned


def groups(Tables tables not None):
    """How many changed-words the table's used part spans."""
    cdef View* t = tables.view()
    return (t.h.sess_hwm + GROUP - 1) >> DIRTY_SHIFT


def mark_all(Tables tables not None):
    """Flags every group: the next passes consider every session (an advertise)."""
    cdef View* t = tables.view()
    cdef uint32_t g, groups = (t.h.sess_hwm + GROUP - 1) >> DIRTY_SHIFT
    for g in range(groups):
        jool_xchg32(&t.dirty[g], 1)


# ---------------------------------------------------------------- incoming

cdef enum InstallResult:
    INSTALLED = 0           # a new session (and BIB entry when needed)
    UPDATED = 1             # an existing session overwritten
    COLLIDED = 2            # its IPv4 transport address belongs to another BIB entry
    NO_SPACE = 3            # the BIB or session table is full
    INVALID = 4             # a field the tables cannot hold


cdef InstallResult install_one(View* t, const uint8_t* r, uint32_t now, const Timeouts* to,
                               uint32_t* seq_sent, uint32_t* last_sent) noexcept nogil:
    cdef uint8_t wire_proto = r[OFF_PROTO], wire_state = r[OFF_STATE], timer = r[OFF_TIMER]
    cdef uint8_t proto, state
    cdef uint16_t sport6 = get16(r + OFF_SRC6_PORT), port4 = get16(r + OFF_SRC4_PORT)
    cdef uint16_t dport = get16(r + OFF_DST4_PORT)
    cdef uint32_t left = get32(r + OFF_EXPIRES), timeout, last, e, b, seq, slot
    cdef const uint8_t* src6 = r + OFF_SRC6
    cdef const uint8_t* src4 = r + OFF_SRC4
    cdef const uint8_t* dst4 = r + OFF_DST4
    cdef Session snap
    cdef Session* s
    cdef InstallResult result
    if wire_proto > WIRE_ICMP or wire_state > 6 or timer > TIMER_SYN4:
        return INVALID
    proto = PROTO_TCP if wire_proto == WIRE_TCP else (PROTO_UDP if wire_proto == WIRE_UDP
                                                      else PROTO_ICMP)
    state = STATE_FROM_WIRE[wire_state] if proto == PROTO_TCP else TCP_ESTABLISHED
    if proto == PROTO_ICMP:
        dport = port4               # ICMP sessions keep the identifier as the peer "port"
    # §3: it expires `left` ms after reception, by our own timeout for its class.
    timeout = timeout_of(to, proto, timer)
    last = now - (timeout - left) if left < timeout else now
    e = sess_find6(t, src6, sport6, dst4, dport, proto, &snap)
    if e != NONE:
        s = &t.sess[e]
        seq = seq_write_begin(&s.seq)
        s.state = state
        s.timer = timer
        s.last = last
        seq_write_end(&s.seq, seq)
        mark_dirty(t, e)
        result = UPDATED
    else:
        b = bib_find6(t, src6, sport6, proto)
        if b == NONE:
            if bib_find4(t, src4, port4, proto) != NONE:
                return COLLIDED
            b = bib_create(t, src6, sport6, src4, port4, proto, False, now)
            if b == NONE:
                return NO_SPACE
        e = sess_create(t, b, dst4, dport, state, timer, now)
        if e == NONE:
            if t.bib[b].sessions == NONE and not (t.bib[b].flags & B_STATIC):
                bib_remove(t, b, now)
            return NO_SPACE
        jool_store32_relaxed(&t.sess[e].last, last)
        result = INSTALLED
    if proto == PROTO_TCP:
        slot = so_find(t, SO_TYPE1, dst4, dport)
        if slot != NONE:
            so_free(t, slot)
    seq_sent[e] = jool_load32(&t.sess[e].seq)   # what we were told is not news to tell
    last_sent[e] = last
    return result


def install(Tables tables not None, cnp.uint8_t[:, ::1] records, uint32_t now, timeouts,
            cnp.uint32_t[::1] seq_sent, cnp.uint32_t[::1] last_sent):
    """Applies received records (n x 140, already header-checked by wire.decode).
    Returns counts: (installed, updated, collided, no_space, invalid)."""
    cdef View* t = tables.view()
    cdef Timeouts to
    cdef uint32_t i, j, n = records.shape[0]
    cdef uint32_t[5] counts
    if n == 0:
        return 0, 0, 0, 0, 0
    if records.shape[1] != RECORD_BYTES:
        raise ValueError("records must be n x 140 bytes")
    if seq_sent.shape[0] < t.h.sess_cap or last_sent.shape[0] < t.h.sess_cap:
        raise ValueError("the sent-state arrays are smaller than the table")
    to.tcp_est, to.tcp_trans, to.udp, to.icmp = timeouts
    memset(counts, 0, sizeof(counts))
    with nogil:
        i = 0
        while i < n:
            lock(t)
            j = 0
            while i < n and j < LOCK_BATCH:
                counts[<int>install_one(t, &records[i, 0], now, &to, &seq_sent[0],
                                        &last_sent[0])] += 1
                i += 1
                j += 1
            unlock(t)
    return counts[0], counts[1], counts[2], counts[3], counts[4]
