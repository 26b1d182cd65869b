"""AF_PACKET TPACKET_V3 receive rings.

A worker maps one RX ring per attached interface. `RxRing.drain()` enters Python
once: with the GIL released it walks every block the kernel has handed over, gives
the frames to the translator in place (the block is the batch's input buffer, no
copy), sends what the translator produced (Egress.transmit) and returns the blocks
to the kernel.

What leaves goes through jool/_fast/egress.pyx (next-hop cache, packet socket,
raw sockets behind it). The translated packets are complete IP packets with final
checksums (a frame the sender left with a partial checksum, TP_STATUS_CSUMNOTREADY,
is completed by the translator). Counts go to the worker's row of the shared
counter block (counters.pxd JDP_*).
"""

import mmap as _mmap
import os
import socket
import struct

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy

from jool._fast.packet cimport Out, Ctx, V_TRANSLATED, V_DROP_ICMP, V_PASS, out_init
from jool._fast.checksum cimport sum_bytes, finish, add
from libc.string cimport memcmp
from jool._fast.pipeline cimport Translator, run_batch, copy_batch
from jool._fast.atomics cimport jool_fence_acquire, jool_fence_release
from jool._fast.defrag cimport Reassembler
from jool._fast.egress cimport Egress
from jool._fast.counters cimport JDP_RX_FRAMES, JDP_RX_TRUNCATED, JDP_NO_SPACE, JDP_COALESCED

cnp.import_array()

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd* fds, unsigned long nfds, int timeout)
    enum: POLLIN

cdef extern from "<linux/if_packet.h>" nogil:
    struct tpacket_hdr_v1:
        uint32_t block_status
        uint32_t num_pkts
        uint32_t offset_to_first_pkt
        uint32_t blk_len
    union tpacket_bd_header_u:
        tpacket_hdr_v1 bh1
    struct tpacket_block_desc:
        uint32_t version
        uint32_t offset_to_priv
        tpacket_bd_header_u hdr
    struct tpacket3_hdr:
        uint32_t tp_next_offset
        uint32_t tp_sec
        uint32_t tp_nsec
        uint32_t tp_snaplen
        uint32_t tp_len
        uint32_t tp_status
        uint16_t tp_mac
        uint16_t tp_net
    enum: TP_STATUS_KERNEL
    enum: TP_STATUS_USER
    enum: TP_STATUS_CSUMNOTREADY
    enum: TP_STATUS_COPY

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VNET_HDR = 15
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
ETH_P_ALL = 0x0003

cdef enum:
    CHUNK = 256                 # frames handed to the translator per call
    VNET_HDR_LEN = 10           # struct virtio_net_hdr, in front of the frame
    VNET_GSO_TCPV4 = 1
    VNET_GSO_TCPV6 = 4
    MERGE_MAX = 65000           # bytes of one coalesced super-frame, headers included
    MERGE_FRAMES = 44
    PARTIAL_CSUM = 1


cdef enum:
    TRACE_RECORD = 64       # bytes a traced packet takes (PacketTrace)
    TRACE_HEADER = 8        # verdict, reserved, reason (u16), length (u16), reserved


cdef class PacketTrace:
    """Where a ring's drain notes what it did with each packet while the
    instance's logging-debug is on: one 64-byte record per packet (verdict,
    counter of the reason, length, the first 56 bytes: the IP header and the ports
    that follow a plain one), for the worker to log after the drain. A full trace
    counts what it could not hold instead."""
    cdef object records             # numpy uint8 (capacity * TRACE_RECORD)
    cdef uint8_t* base
    cdef public uint32_t capacity
    cdef public uint32_t count
    cdef public uint64_t missed

    def __init__(self, uint32_t capacity=4096):
        cdef cnp.uint8_t[::1] view
        self.records = np.zeros(max(capacity, 1) * TRACE_RECORD, dtype=np.uint8)
        view = self.records
        self.base = &view[0]
        self.capacity = capacity
        self.count = 0
        self.missed = 0

    def take(self):
        """[(verdict, reason, length, head bytes)] noted since the last call."""
        out = []
        for k in range(self.count):
            rec = bytes(self.records[k * TRACE_RECORD:(k + 1) * TRACE_RECORD])
            length = rec[4] | rec[5] << 8
            out.append((rec[0], rec[2] | rec[3] << 8, length,
                        rec[TRACE_HEADER:TRACE_HEADER + min(length, TRACE_RECORD - TRACE_HEADER)]))
        self.count = 0
        return out


cdef inline void trace_packets(PacketTrace trace, const uint8_t* base, const uint32_t* offs,
                               const uint32_t* lens, const uint8_t* verdicts,
                               const uint16_t* reasons, uint32_t n) noexcept nogil:
    cdef uint32_t k, length
    cdef uint8_t* rec
    for k in range(n):
        if trace.count >= trace.capacity:
            trace.missed += n - k
            return
        rec = trace.base + <uint64_t>trace.count * TRACE_RECORD
        length = lens[k] if lens[k] < 0xffff else 0xffff
        rec[0] = verdicts[k]
        rec[1] = 0
        rec[2] = reasons[k] & 0xff
        rec[3] = reasons[k] >> 8
        rec[4] = length & 0xff
        rec[5] = length >> 8
        memcpy(rec + TRACE_HEADER, base + offs[k],
               lens[k] if lens[k] < TRACE_RECORD - TRACE_HEADER else TRACE_RECORD - TRACE_HEADER)
        trace.count += 1


cdef class RxRing:
    """One interface's TPACKET_V3 ring, joined to the worker group's fanout."""
    cdef readonly object sock, ifname
    cdef object _mm, _arr
    cdef uint8_t* base
    cdef uint32_t block_size, block_nr, current
    cdef readonly int fd
    cdef readonly bint vnet         # frames carry a virtio-net header (super-frame info)

    def __init__(self, ifname, uint32_t block_size=1 << 16, uint32_t block_nr=128,
                 uint32_t frame_size=2048, fanout_group=None, bpf=None,
                 uint32_t retire_ms=1, bint vnet=False):
        cdef cnp.uint8_t[::1] view
        self.ifname = ifname
        # Protocol 0: the socket receives nothing until bind(), by which time the
        # filter is attached; no unfiltered frame is ever queued.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            if bpf is not None:
                bpf(sock)           # filter before bind: no unfiltered frame gets queued
            if vnet:
                # Super-frames (GSO from a local sender, GRO) then tell their
                # segment size: translated once, the kernel cuts them up again.
                sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            try:
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                pass                # older kernels: the BPF filter drops them instead
            req = struct.pack("IIIIIII", block_size, block_nr, frame_size,
                              block_size * block_nr // frame_size, retire_ms, 0, 0)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self._mm = _mmap.mmap(sock.fileno(), block_size * block_nr, _mmap.MAP_SHARED,
                                  _mmap.PROT_READ | _mmap.PROT_WRITE)
            sock.bind((ifname, ETH_P_ALL))         # Python swaps it to network order
            if fanout_group is not None:
                # One flow always reaches the same worker; the kernel reassembles
                # IPv4 fragments first so the pieces of a datagram stay together.
                sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack(
                    "I", (fanout_group & 0xffff)
                    | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16)))
        except Exception:
            sock.close()
            raise
        self.sock = sock
        self.fd = sock.fileno()
        self._arr = np.frombuffer(self._mm, dtype=np.uint8)
        view = self._arr
        self.base = &view[0]
        self.block_size = block_size
        self.block_nr = block_nr
        self.current = 0
        self.vnet = vnet

    def dropped(self):
        """Frames the kernel dropped for want of ring space since the last call
        (PACKET_STATISTICS resets on read)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        return struct.unpack("III", raw)[1]

    def close(self):
        self._arr = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass
            self._mm = None
        self.sock.close()

    def drain(self, Translator t, uint32_t now_ms, Egress tx, Reassembler reasm=None,
              uint32_t max_blocks=64, bint copy_only=False, PacketTrace trace=None):
        """Translates and sends every frame of the blocks ready now; returns the
        number of frames. One call per wakeup: no Python per packet.
        copy_only: the benchmarks' bare forwarder (tools/bench): every frame's
        packet is sent on unchanged, nothing translated.
        trace: logging-debug's notes of every packet (PacketTrace)."""
        cdef uint32_t offs[CHUNK]
        cdef uint32_t lens[CHUNK]
        cdef uint8_t flags[CHUNK]
        cdef uint32_t marks[CHUNK]
        cdef uint8_t maps[CHUNK * 16]
        cdef uint16_t ports[CHUNK]
        cdef uint8_t verdicts[CHUNK]
        cdef uint16_t reasons[CHUNK]
        cdef cnp.uint8_t[::1] outbuf = self._out_buffer()
        cdef uint32_t out_off[CHUNK * 8]
        cdef uint32_t out_len[CHUNK * 8]
        cdef uint32_t out_input[CHUNK * 8]
        cdef uint8_t out_kind[CHUNK * 8]
        cdef uint16_t out_gso[CHUNK * 8]
        cdef uint16_t gsos[CHUNK]
        cdef SegInfo segs[CHUNK]
        cdef const uint8_t* vh
        cdef uint8_t gso_type
        cdef Out o
        cdef tpacket_block_desc* desc
        cdef tpacket3_hdr* hdr
        cdef uint8_t* block
        cdef uint32_t npkts, p, off, frames = 0, blocks = 0, count, i, done, k, j, end, run
        cdef uint32_t merged_len
        cdef uint16_t merged_gso
        cdef uint8_t partial_flag = PARTIAL_CSUM
        cdef uint64_t coalesced = 0
        cdef cnp.uint8_t[::1] scratch_view = self._scratch_buffer()
        cdef uint8_t* scratch = &scratch_view[0]
        cdef Ctx* ctx = &t.ctx
        cdef uint64_t truncated = 0, nospace = 0
        cdef const uint8_t* whole
        cdef uint32_t whole_len, zero = 0
        cdef uint8_t no_flags = 2          # REASSEMBLED (pipeline.pyx)
        cdef int got
        cdef bint defrag = reasm is not None
        cdef bint tracing = trace is not None
        memset(marks, 0, sizeof(marks))
        memset(maps, 0, sizeof(maps))
        memset(ports, 0, sizeof(ports))
        out_init(&o, &outbuf[0], outbuf.shape[0], out_off, out_len, out_input, out_kind,
                 out_gso if (self.vnet and tx.fd_gso >= 0) else NULL, CHUNK * 8)
        # Software GRO: only worth it when the result can leave whole.
        cdef bint coalesce = o.rec_gso != NULL and not copy_only
        if t.tables is not None:
            t.ctx.tables = t.tables.view()
        ctx.now = now_ms
        with nogil:
            while blocks < max_blocks:
                block = self.base + <uint64_t>self.current * self.block_size
                desc = <tpacket_block_desc*>block
                if not (desc.hdr.bh1.block_status & TP_STATUS_USER):
                    break
                jool_fence_acquire()
                npkts = desc.hdr.bh1.num_pkts
                off = desc.hdr.bh1.offset_to_first_pkt
                p = 0
                while p < npkts:
                    count = 0
                    while p < npkts and count < CHUNK:
                        hdr = <tpacket3_hdr*>(block + off)
                        if hdr.tp_status & TP_STATUS_COPY or hdr.tp_snaplen < hdr.tp_len:
                            truncated += 1          # cut at the frame size: never forwarded
                        elif hdr.tp_snaplen > <uint32_t>(hdr.tp_net - hdr.tp_mac):
                            got = -1
                            if defrag:
                                got = reasm.add(block + off + hdr.tp_net,
                                                hdr.tp_snaplen - (hdr.tp_net - hdr.tp_mac),
                                                now_ms, &whole, &whole_len)
                            if got == 1:
                                # A datagram is whole: translate and send it now.
                                ctx.in_gso = NULL
                                o.n = 0
                                o.used = 0
                                run_batch(ctx, whole, whole_len, &zero, &whole_len, &no_flags,
                                          maps, ports, marks, 1, verdicts, reasons, &o)
                                if tracing:
                                    trace_packets(trace, whole, &zero, &whole_len, verdicts,
                                                  reasons, 1)
                                tx.transmit(&o, now_ms)
                                hand_back_passed(tx, <uint8_t*>whole, &zero, &whole_len,
                                                 &no_flags, verdicts, 1)
                            elif got == -1:
                                offs[count] = off + hdr.tp_net
                                lens[count] = hdr.tp_snaplen - (hdr.tp_net - hdr.tp_mac)
                                flags[count] = PARTIAL_CSUM if hdr.tp_status & TP_STATUS_CSUMNOTREADY else 0
                                gsos[count] = 0
                                if self.vnet and hdr.tp_mac >= VNET_HDR_LEN:
                                    vh = block + off + hdr.tp_mac - VNET_HDR_LEN
                                    gso_type = vh[1] & 0x7f         # bit 7: ECN
                                    if gso_type == VNET_GSO_TCPV4 or gso_type == VNET_GSO_TCPV6:
                                        memcpy(&gsos[count], vh + 4, 2)
                                count += 1
                        off += hdr.tp_next_offset
                        p += 1
                    if coalesce:
                        segment_infos(block, offs, lens, flags, gsos, count, segs)
                    i = 0
                    while i < count:
                        # The next run of one TCP stream's segments to send as a
                        # single super-frame (coalesce_run), and what precedes it.
                        j = count
                        run = 0
                        if coalesce:
                            j = i
                            while j < count:
                                run = coalesce_run(block, offs, lens, segs, j, count)
                                if run >= 2:
                                    break
                                j += 1
                        end = j
                        while i < end:
                            o.n = 0
                            o.used = 0
                            ctx.in_gso = gsos + i if self.vnet else NULL
                            if copy_only:
                                done = copy_batch(block, self.block_size, offs + i, lens + i,
                                                  end - i, verdicts, &o)
                                for k in range(o.n):
                                    if flags[i + o.rec_input[k]] & PARTIAL_CSUM:
                                        complete_checksum(o.buf + o.rec_off[k], o.rec_len[k])
                            else:
                                done = run_batch(ctx, block, self.block_size, offs + i, lens + i,
                                                 flags + i, maps, ports, marks, end - i,
                                                 verdicts, reasons, &o)
                                if tracing:
                                    trace_packets(trace, block, offs + i, lens + i, verdicts,
                                                  reasons, done)
                            tx.transmit(&o, now_ms)
                            hand_back_passed(tx, block, offs + i, lens + i, flags + i, verdicts,
                                             done)
                            if done == 0:
                                nospace += 1
                                i = end
                                break
                            i += done
                        if run >= 2 and j < count:
                            merged_len = merge_run(block, offs, lens, j, run, scratch,
                                                   &merged_gso)
                            o.n = 0
                            o.used = 0
                            ctx.in_gso = &merged_gso
                            run_batch(ctx, scratch, merged_len, &zero, &merged_len,
                                      &partial_flag, maps, ports, marks, 1, verdicts, reasons,
                                      &o)
                            if tracing:
                                trace_packets(trace, scratch, &zero, &merged_len, verdicts,
                                              reasons, 1)
                            tx.transmit(&o, now_ms)
                            hand_back_passed(tx, scratch, &zero, &merged_len, &partial_flag,
                                             verdicts, 1)
                            coalesced += run
                            i = j + run
                    frames += count
                jool_fence_release()
                desc.hdr.bh1.block_status = TP_STATUS_KERNEL
                self.current = (self.current + 1) % self.block_nr
                blocks += 1
        ctx.in_gso = NULL
        tx.counters[JDP_RX_FRAMES] += frames + truncated
        tx.counters[JDP_RX_TRUNCATED] += truncated
        tx.counters[JDP_NO_SPACE] += nospace
        tx.counters[JDP_COALESCED] += coalesced
        return frames

    cdef object _scratch
    def _scratch_buffer(self):
        if self._scratch is None:
            self._scratch = np.zeros(MERGE_MAX + 64, dtype=np.uint8)
        return self._scratch

    cdef object _out_buf
    def _out_buffer(self):
        if self._out_buf is None:
            # Room for a whole chunk of the largest outputs (fragments included).
            self._out_buf = np.zeros(CHUNK * 2 * 2048 + (1 << 17), dtype=np.uint8)
        return self._out_buf


# ---------------------------------------------------------------- software GRO
#
# With the senders' offloads off, a TCP stream arrives as MTU-sized segments, each
# of which would cost a trip through the kernel's send path. Adjacent segments of
# one stream in a chunk (in sequence, same headers but the sequence number, ACK only,
# PSH allowed on the last, all as long as the first but the last) are put together
# into one super-frame, translated once and handed on whole like a sender's GSO
# frame (Linux GRO's rules, stricter). A segment whose checksum does not verify
# is never merged: it goes through on its own, its checksum still wrong.

cdef struct SegInfo:
    uint32_t iphl                   # 0: not a segment to merge
    uint32_t thl
    uint32_t pay


cdef inline uint32_t be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint16_t be16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef bint tcp_segment_info(const uint8_t* pkt, uint32_t n, uint8_t flag, uint32_t* iphl,
                           uint32_t* thl, uint32_t* payload) noexcept nogil:
    """Whether pkt is a plain TCP segment with data that may be merged, and its
    header lengths; its checksum verified unless partial (a local sender's)."""
    cdef uint16_t sum_
    if n < 40:
        return False
    if pkt[0] >> 4 == 6:
        if n < 60 or pkt[6] != 6 or <uint32_t>be16(pkt + 4) + 40 != n:
            return False
        iphl[0] = 40
    elif pkt[0] == 0x45:
        if pkt[9] != 6 or be16(pkt + 2) != n or (be16(pkt + 6) & 0xbfff) != 0 \
                or not (pkt[6] & 0x40):
            return False            # a fragment, or DF clear
        iphl[0] = 20
    else:
        return False
    thl[0] = (pkt[iphl[0] + 12] >> 4) * 4
    if thl[0] < 20 or iphl[0] + thl[0] >= n:
        return False
    if pkt[iphl[0] + 13] & ~0x18:          # anything but ACK and PSH
        return False
    payload[0] = n - iphl[0] - thl[0]
    if not (flag & PARTIAL_CSUM):
        if pkt[0] >> 4 == 6:
            sum_ = add(add(sum_bytes(pkt, n, 8, 32), <uint16_t>(n - 40)), 6)
        else:
            sum_ = add(add(sum_bytes(pkt, n, 12, 8), <uint16_t>(n - 20)), 6)
        if add(sum_, sum_bytes(pkt, n, iphl[0], n - iphl[0])) != 0xffff:
            return False
    return True


cdef bint same_stream(const uint8_t* a, const uint8_t* b, uint32_t iphl,
                      uint32_t thl) noexcept nogil:
    """b carries on a's stream with the same headers, the sequence number, the
    total length, the checksums and PSH aside."""
    if iphl == 40:
        if memcmp(a, b, 4) != 0 or a[6] != b[6] or a[7] != b[7] or memcmp(a + 8, b + 8, 32) != 0:
            return False                    # class, label, hop limit, addresses
    elif a[1] != b[1] or a[8] != b[8] or memcmp(a + 12, b + 12, 8) != 0:
        return False                        # TOS, TTL, addresses
    if memcmp(a + iphl, b + iphl, 4) != 0:
        return False                        # ports
    if memcmp(a + iphl + 8, b + iphl + 8, 5) != 0 or memcmp(a + iphl + 14, b + iphl + 14, 2) != 0:
        return False                        # ACK number, header length, window
    if (a[iphl + 13] & ~0x08) != (b[iphl + 13] & ~0x08):
        return False
    return thl == 20 or memcmp(a + iphl + 20, b + iphl + 20, thl - 20) == 0   # options


cdef void segment_infos(const uint8_t* block, const uint32_t* offs, const uint32_t* lens,
                        const uint8_t* flags, const uint16_t* gsos, uint32_t count,
                        SegInfo* segs) noexcept nogil:
    """tcp_segment_info() of every frame of a chunk, once (it sums whole segments
    to verify them); iphl 0 marks a frame that is not to be merged."""
    cdef uint32_t k, iphl, thl, pay
    for k in range(count):
        segs[k].iphl = 0
        if not gsos[k] and tcp_segment_info(block + offs[k], lens[k], flags[k], &iphl, &thl,
                                            &pay):
            segs[k].iphl = iphl
            segs[k].thl = thl
            segs[k].pay = pay


cdef uint32_t coalesce_run(const uint8_t* block, const uint32_t* offs, const uint32_t* lens,
                           const SegInfo* segs, uint32_t first, uint32_t count) noexcept nogil:
    """How many frames from first on make one mergeable run (0 or 1: none)."""
    cdef const uint8_t* a = block + offs[first]
    cdef const uint8_t* b
    cdef uint32_t iphl = segs[first].iphl, thl = segs[first].thl, pay = segs[first].pay
    cdef uint32_t pay_b, k, seq, total
    if iphl == 0:
        return 0
    if a[iphl + 13] & 0x08:                 # PSH: it ends a run, so it cannot start one
        return 1
    seq = be32(a + iphl + 4) + pay
    total = lens[first]
    k = first + 1
    while k < count and k - first < MERGE_FRAMES:
        b = block + offs[k]
        pay_b = segs[k].pay
        if segs[k].iphl != iphl or segs[k].thl != thl or pay_b > pay or total + pay_b > MERGE_MAX \
                or be32(b + iphl + 4) != seq or not same_stream(a, b, iphl, thl):
            break
        seq += pay_b
        total += pay_b
        k += 1
        if pay_b < pay or b[iphl + 13] & 0x08:
            break                           # a short or a PSH segment ends the run
    return k - first


cdef uint32_t merge_run(const uint8_t* block, const uint32_t* offs, const uint32_t* lens,
                        uint32_t first, uint32_t run, uint8_t* out, uint16_t* gso) noexcept nogil:
    """Writes the run as one packet into out: the first segment's headers (PSH
    from the last), every payload in order; returns its length."""
    cdef const uint8_t* a = block + offs[first]
    cdef uint32_t iphl = 40 if a[0] >> 4 == 6 else 20
    cdef uint32_t thl = (a[iphl + 12] >> 4) * 4
    cdef uint32_t hdr = iphl + thl, pos, k, n
    cdef uint16_t sum_
    memcpy(out, a, hdr)
    pos = hdr
    for k in range(first, first + run):
        n = lens[k] - hdr
        memcpy(out + pos, block + offs[k] + hdr, n)
        pos += n
    out[iphl + 13] = (block + offs[first + run - 1])[iphl + 13]
    # The TCP checksum field gets the new pseudo-header sum (the frame goes on
    # as a partial-checksum one: gso or not, the translator finishes from there).
    if iphl == 40:
        sum_ = add(add(sum_bytes(out, pos, 8, 32), <uint16_t>(pos - 40)), 6)
    else:
        sum_ = add(add(sum_bytes(out, pos, 12, 8), <uint16_t>(pos - 20)), 6)
    out[iphl + 16] = sum_ >> 8
    out[iphl + 17] = sum_ & 0xff
    if iphl == 40:
        out[4] = (pos - 40) >> 8
        out[5] = (pos - 40) & 0xff
    else:
        out[2] = pos >> 8
        out[3] = pos & 0xff
        out[10] = 0
        out[11] = 0
        sum_ = finish(sum_bytes(out, pos, 0, 20))
        out[10] = sum_ >> 8
        out[11] = sum_ & 0xff
    gso[0] = <uint16_t>(lens[first] - hdr)
    return pos


cdef void complete_checksum(uint8_t* pkt, uint32_t n) noexcept nogil:
    """A frame from a local sender with checksum offload carries only the
    pseudo-header sum in its TCP/UDP checksum field: finish it (RFC 1071) before
    the kernel gets the packet back as if received."""
    cdef uint32_t l4, field
    cdef uint8_t proto
    cdef uint16_t csum
    if n < 20:
        return
    if pkt[0] >> 4 == 4:
        l4 = (pkt[0] & 0xf) * 4
        proto = pkt[9]
    elif pkt[0] >> 4 == 6 and n >= 40:
        l4 = 40
        proto = pkt[6]
    else:
        return
    if proto == 6:
        field = l4 + 16
    elif proto == 17:
        field = l4 + 6
    else:
        return
    if field + 2 > n:
        return
    csum = finish(sum_bytes(pkt, n, l4, n - l4))
    if csum == 0 and proto == 17:
        csum = 0xffff
    pkt[field] = csum >> 8
    pkt[field + 1] = csum & 0xff


cdef void hand_back_passed(Egress tx, uint8_t* base, const uint32_t* offs,
                           const uint32_t* lens, const uint8_t* flags,
                           const uint8_t* verdicts, uint32_t n) noexcept nogil:
    """The inputs of a chunk the translator passed (V_PASS) go back to the kernel."""
    cdef uint8_t* packets[CHUNK]
    cdef uint32_t lengths[CHUNK]
    cdef uint32_t i, k = 0
    for i in range(n):
        if verdicts[i] == V_PASS:
            packets[k] = base + offs[i]
            lengths[k] = lens[i]
            if flags[i] & PARTIAL_CSUM:
                complete_checksum(packets[k], lengths[k])
            k += 1
    if k:
        tx.hand_back(packets, lengths, k)


def wait(rings, int timeout_ms):
    """poll() the rings' sockets; returns the ready ones."""
    cdef pollfd fds[64]
    cdef int n = len(rings), rc, i
    if n > 64:
        raise ValueError("at most 64 rings per worker")
    for i in range(n):
        fds[i].fd = rings[i].fd
        fds[i].events = POLLIN
        fds[i].revents = 0
    with nogil:
        rc = poll(fds, n, timeout_ms)
    return [rings[i] for i in range(n) if rc > 0 and fds[i].revents]
