"""The hand-over of an --iptables instance: netfilter queues (NFQUEUE).

Jool's iptables mode translates what the operator's rules send to its JOOL target.
Ours takes the same place with the kernel's own queueing target: the operator's
rules say `-j NFQUEUE --queue-num N` (or `--queue-balance N:M`), and worker i of the
instance reads queue N + i over NETLINK_NETFILTER (nfnetlink_queue, copy mode
"packet"). A queued packet is translated and sent through the egress; the kernel is
told to drop the original (the translator consumed it, like the JOOL target's
NF_STOLEN). A packet the translator does not take (its verdict is "pass", as
Jool's target returns XT_CONTINUE / NF_ACCEPT) is given back to the kernel with an
accept verdict and goes on through the firewall untouched.

The kernel hands the packets over whole: GSO packets are segmented and partial
checksums completed before queueing (nfnetlink_queue does both when the queue has
no F_GSO flag), so the translator sees ordinary packets.

One drain: recvmmsg() of up to a batch of messages, the payloads translated in
place with the GIL released, the outputs sent, and every verdict of the batch
written into one netlink datagram. No Python per packet.
"""

import os
import socket
import struct

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy

from jool._fast.packet cimport Out, Ctx, V_PASS, out_init
from jool._fast.pipeline cimport Translator, run_batch
from jool._fast.egress cimport Egress, iovec, msghdr, mmsghdr
from jool._fast.counters cimport JDP_NFQ_RECEIVED, JDP_NFQ_ACCEPTED, JDP_RX_FRAMES, JDP_NO_SPACE

cnp.import_array()

cdef extern from "<sys/socket.h>" nogil:
    int recvmmsg(int fd, mmsghdr* msgs, unsigned int vlen, int flags, void* timeout)
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    enum: MSG_DONTWAIT

cdef extern from "<arpa/inet.h>" nogil:
    uint32_t ntohl(uint32_t)
    uint32_t htonl(uint32_t)
    uint16_t htons(uint16_t)

cdef enum:
    BATCH = 64
    MSG_BUF = 65536 + 512       # one queued packet (up to 64 KiB) and its attributes
    OUT_RECORDS = BATCH * 8
    NLMSG_HDRLEN = 16
    NFGEN_HDRLEN = 4
    NFQNL_MSG_PACKET = 0
    NFQA_PACKET_HDR = 1
    NFQA_PAYLOAD = 10
    VERDICT_MSG_LEN = 32        # nlmsghdr 16 + nfgenmsg 4 + NFQA_VERDICT_HDR 12
    NF_DROP = 0
    NF_ACCEPT = 1
    SUBSYS_QUEUE = 3            # NFNL_SUBSYS_QUEUE
    MSG_VERDICT = 1             # NFQNL_MSG_VERDICT
    F_REQUEST = 1               # NLM_F_REQUEST

NETLINK_NETFILTER = 12
NETLINK_NO_ENOBUFS = 5
SOL_NETLINK = 270
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2


def _attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + bytes((4 - length % 4) % 4)


cdef class NfQueue:
    """One netfilter queue, bound by this process."""
    cdef readonly object sock
    cdef readonly int fd
    cdef readonly uint32_t number
    cdef object _in, _out, _verdicts
    cdef uint8_t* inbuf
    cdef uint8_t* verdict_buf

    def __init__(self, uint32_t number, uint32_t maxlen=4096):
        cdef cnp.uint8_t[::1] view
        if number > 65535:
            raise ValueError("queue numbers go from 0 to 65535")
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.bind((0, 0))
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)    # SO_RCVBUFFORCE
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            # A full socket buffer drops packets (counted by the kernel), it must not
            # make recv() fail.
            self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
            self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
            self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, NFQNL_COPY_PACKET)))
            self._config(_attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)))
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self._in = np.zeros(BATCH * MSG_BUF, dtype=np.uint8)
        view = self._in
        self.inbuf = &view[0]
        self._verdicts = np.zeros(BATCH * VERDICT_MSG_LEN, dtype=np.uint8)
        view = self._verdicts
        self.verdict_buf = &view[0]
        self._out = np.zeros(BATCH * 2 * 2048 + (1 << 18), dtype=np.uint8)

    def _config(self, attrs):
        """One NFQNL_MSG_CONFIG request, acknowledged (EBUSY: the queue is taken)."""
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(self.number)) + attrs
        header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG,
                             NLM_F_REQUEST | NLM_F_ACK, 0, 0)
        self.sock.send(header + body)
        reply = self.sock.recv(8192)
        length, kind = struct.unpack_from("=IH", reply, 0)
        if kind == NLMSG_ERROR:
            code = struct.unpack_from("=i", reply, 16)[0]
            if code:
                raise OSError(-code, "netfilter queue %d: %s" % (self.number, os.strerror(-code)))

    def close(self):
        self.sock.close()

    def drain(self, Translator t, uint32_t now_ms, Egress tx):
        """Translates every queued packet waiting now and gives the kernel its
        verdicts; returns the number of packets."""
        cdef mmsghdr msgs[BATCH]
        cdef iovec iovs[BATCH]
        cdef uint32_t offs[BATCH]
        cdef uint32_t lens[BATCH]
        cdef uint8_t flags[BATCH]
        cdef uint32_t marks[BATCH]
        cdef uint8_t maps[BATCH * 16]
        cdef uint16_t ports[BATCH]
        cdef uint8_t verdicts[BATCH]
        cdef uint16_t reasons[BATCH]
        cdef uint32_t ids[BATCH]
        cdef uint32_t out_off[OUT_RECORDS]
        cdef uint32_t out_len[OUT_RECORDS]
        cdef uint32_t out_input[OUT_RECORDS]
        cdef uint8_t out_kind[OUT_RECORDS]
        cdef cnp.uint8_t[::1] outbuf = self._out
        cdef Out o
        cdef Ctx* ctx = &t.ctx
        cdef int got, i
        cdef uint32_t count, done, pos, total = 0, accepted = 0, start, mlen, alen, atype
        cdef uint32_t received = 0, nospace = 0
        cdef uint8_t* m
        cdef uint8_t* v
        cdef bint have_id, have_payload
        cdef uint16_t queue_be = htons(<uint16_t>self.number)
        memset(marks, 0, sizeof(marks))
        memset(maps, 0, sizeof(maps))
        memset(ports, 0, sizeof(ports))
        memset(flags, 0, sizeof(flags))
        out_init(&o, &outbuf[0], outbuf.shape[0], out_off, out_len, out_input, out_kind, NULL,
                 OUT_RECORDS)
        if t.tables is not None:
            t.ctx.tables = t.tables.view()
        ctx.now = now_ms
        with nogil:
            while True:
                for i in range(BATCH):
                    memset(&msgs[i], 0, sizeof(mmsghdr))
                    iovs[i].iov_base = self.inbuf + <uint64_t>i * MSG_BUF
                    iovs[i].iov_len = MSG_BUF
                    msgs[i].msg_hdr.msg_iov = &iovs[i]
                    msgs[i].msg_hdr.msg_iovlen = 1
                got = recvmmsg(self.fd, msgs, BATCH, MSG_DONTWAIT, NULL)
                if got <= 0:
                    break
                # Each datagram carries one NFQNL_MSG_PACKET: its id and payload.
                count = 0
                for i in range(got):
                    m = self.inbuf + <uint64_t>i * MSG_BUF
                    mlen = msgs[i].msg_len
                    if mlen < NLMSG_HDRLEN + NFGEN_HDRLEN:
                        continue
                    if (m[4] | (m[5] << 8)) != ((SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET):
                        continue
                    if (m[0] | (m[1] << 8) | (m[2] << 16) | (<uint32_t>m[3] << 24)) < mlen:
                        mlen = m[0] | (m[1] << 8) | (m[2] << 16) | (<uint32_t>m[3] << 24)
                    pos = NLMSG_HDRLEN + NFGEN_HDRLEN
                    have_id = have_payload = False
                    while pos + 4 <= mlen:
                        alen = m[pos] | (m[pos + 1] << 8)
                        atype = (m[pos + 2] | (m[pos + 3] << 8)) & 0x7fff
                        if alen < 4 or pos + alen > mlen:
                            break
                        if atype == NFQA_PACKET_HDR and alen >= 4 + 4:
                            memcpy(&ids[count], m + pos + 4, 4)
                            have_id = True
                        elif atype == NFQA_PAYLOAD:
                            offs[count] = <uint32_t>i * MSG_BUF + pos + 4
                            lens[count] = alen - 4
                            have_payload = True
                        pos += (alen + 3) & ~3u
                    if have_id:
                        if not have_payload:
                            # Nothing to translate: dropped and counted as malformed.
                            offs[count] = 0
                            lens[count] = 0
                        count += 1
                received += count
                start = 0
                while start < count:
                    o.n = 0
                    o.used = 0
                    done = run_batch(ctx, self.inbuf, BATCH * MSG_BUF, offs + start,
                                     lens + start, flags + start, maps, ports, marks,
                                     count - start, verdicts + start, reasons + start, &o)
                    tx.transmit(&o, now_ms)
                    if done == 0:
                        # No room for even one packet's output: the rest are dropped.
                        nospace += 1
                        while start < count:
                            verdicts[start] = 0
                            start += 1
                        break
                    start += done
                # Every verdict of the batch in one datagram.
                for i in range(count):
                    v = self.verdict_buf + i * VERDICT_MSG_LEN
                    memset(v, 0, VERDICT_MSG_LEN)
                    v[0] = VERDICT_MSG_LEN
                    v[4] = MSG_VERDICT
                    v[5] = SUBSYS_QUEUE
                    v[6] = F_REQUEST
                    v[16] = 0               # AF_UNSPEC
                    memcpy(v + 18, &queue_be, 2)
                    v[20] = 12              # NFQA_VERDICT_HDR: length 12, type 2
                    v[22] = 2
                    if verdicts[i] == V_PASS:
                        (<uint32_t*>(v + 24))[0] = htonl(NF_ACCEPT)
                        accepted += 1
                    else:
                        (<uint32_t*>(v + 24))[0] = htonl(NF_DROP)
                    memcpy(v + 28, &ids[i], 4)
                if count:
                    send(self.fd, self.verdict_buf, count * VERDICT_MSG_LEN, 0)
                total += count
                if got < BATCH:
                    break
        tx.counters[JDP_NFQ_RECEIVED] += received
        tx.counters[JDP_NFQ_ACCEPTED] += accepted
        tx.counters[JDP_RX_FRAMES] += received
        tx.counters[JDP_NO_SPACE] += nospace
        return total
