"""Where translated packets leave: a next-hop cache in front of packet sockets,
with the kernel's raw sockets behind it.

A destination whose next hop is known (the route's output interface and the
neighbour's MAC address, resolved by jool/dataplane/nexthop.py from the control
process's mirror of the kernel's tables) gets an Ethernet header from the cache and
leaves on one AF_PACKET socket, bypassing routing, netfilter and the neighbour
subsystem: the kernel only queues the frame on the device. Every other packet goes
through a raw IP socket (IP_HDRINCL / IPV6_HDRINCL), so the kernel routes it and
resolves the neighbour; the destination is queued as a miss, and the worker
resolves the queued misses after the drain, in Python, once per destination (the
cache learns). Cached entries live a few seconds: afterwards one packet goes
through the kernel again, which keeps the kernel's neighbour entry confirmed
(RFC 4861 7.3 / ARP reachability), and the entry is resolved anew. Any change of
routes, links or neighbours flushes the cache (the worker watches the mirror's
generation).

The packets are complete IP packets with final checksums; nothing here changes a
byte of them.
"""

import os
import socket
import struct

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t, uint64_t
from libc.string cimport memset, memcpy, memcmp

from jool._fast.packet cimport Out, out_init
from jool._fast.counters cimport *

cnp.import_array()

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        unsigned short sin_port
        in_addr sin_addr
    struct in6_addr:
        pass
    struct sockaddr_in6:
        unsigned short sin6_family
        unsigned short sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id
    enum: AF_INET
    enum: AF_INET6
    uint16_t htons(uint16_t)

cdef extern from "<linux/if_packet.h>" nogil:
    struct sockaddr_ll:
        unsigned short sll_family
        unsigned short sll_protocol
        int sll_ifindex
        unsigned short sll_hatype
        unsigned char sll_pkttype
        unsigned char sll_halen
        unsigned char sll_addr[8]

cdef enum:
    TX_BATCH = 64               # messages per sendmmsg() call
    VNET_HDR_LEN = 10           # struct virtio_net_hdr
    VNET_F_NEEDS_CSUM = 1
    VNET_GSO_TCPV4 = 1
    VNET_GSO_TCPV6 = 4
    AF_PACKET_ = 17
    ETH_HLEN = 14

SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
PACKET_VNET_HDR = 15
IPV6_HDRINCL = 36
DEFAULT_BUCKETS = 1024          # x NH_WAYS entries of 64 bytes: 256 KiB


cdef inline uint32_t bucket_of(uint64_t seed, uint32_t mask, const uint8_t* addr) noexcept nogil:
    cdef uint64_t a, b
    memcpy(&a, addr, 8)
    memcpy(&b, addr + 8, 8)
    # Multiply-shift over both halves with a per-process seed: destinations an
    # IPv6 client picks cannot be aimed at one bucket from outside.
    return <uint32_t>(((a ^ seed) * 0x9E3779B97F4A7C15ULL
                       ^ (b + seed) * 0xC2B2AE3D27D4EB4FULL) >> 40) & mask


cdef inline bint expired(NextHop* e, uint32_t now) noexcept nogil:
    return <int32_t>(now - e.expires) >= 0


cdef inline void ll_message(mmsghdr* msg, sockaddr_ll* addr, iovec* iovs, int ifindex,
                           const uint8_t* eth, const uint8_t* vnet, const uint8_t* pkt,
                           uint32_t length) noexcept nogil:
    """One message of a packet socket: [virtio-net header,] Ethernet header, packet,
    to ifindex (eth: destination MAC, source MAC, EtherType)."""
    cdef uint32_t n = 0
    memset(msg, 0, sizeof(mmsghdr))
    memset(addr, 0, sizeof(sockaddr_ll))
    addr.sll_family = AF_PACKET_
    memcpy(&addr.sll_protocol, eth + 12, 2)             # the EtherType, network order
    addr.sll_ifindex = ifindex
    addr.sll_halen = 6
    memcpy(addr.sll_addr, eth, 6)
    if vnet != NULL:
        iovs[n].iov_base = <void*>vnet
        iovs[n].iov_len = VNET_HDR_LEN
        n += 1
    iovs[n].iov_base = <void*>eth
    iovs[n].iov_len = ETH_HLEN
    iovs[n + 1].iov_base = <void*>pkt
    iovs[n + 1].iov_len = length
    msg.msg_hdr.msg_name = addr
    msg.msg_hdr.msg_namelen = sizeof(sockaddr_ll)
    msg.msg_hdr.msg_iov = iovs
    msg.msg_hdr.msg_iovlen = n + 2


cdef class Egress:
    """A worker's output: raw sockets, one packet socket and the next-hop cache.

    counters: the worker's uint64 row of the shared counter block (JDP_* slots),
    or None for a private one. cache=False sends everything through the kernel."""

    def __init__(self, counters=None, uint32_t buckets=DEFAULT_BUCKETS, bint cache=True,
                 uint32_t pending_ms=250):
        cdef cnp.uint8_t[::1] view
        cdef cnp.uint64_t[::1] cview
        if buckets == 0 or buckets & (buckets - 1):
            raise ValueError("buckets must be a power of two")
        if counters is None:
            counters = np.zeros(JDP_SLOTS, dtype=np.uint64)
        elif counters.dtype != np.uint64 or counters.shape[0] < JDP_SLOTS:
            raise ValueError("counters must be a uint64 row of at least %d slots" % JDP_SLOTS)
        self._counters_array = counters
        cview = counters
        self.counters = <uint64_t*>&cview[0]
        self._cache_array = np.zeros(buckets * NH_WAYS * sizeof(NextHop), dtype=np.uint8)
        view = self._cache_array
        self.cache = <NextHop*>&view[0]
        self.buckets_mask = buckets - 1
        self.seed = struct.unpack("<Q", os.urandom(8))[0]
        self.nmiss = 0
        self.pending_ms = pending_ms
        self.cache_enabled = cache
        self.sock4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock6.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
        # Protocol 0: a sending-only packet socket never receives a frame.
        self.sock_ll = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            # Straight to the driver: veth and most virtual devices have no queue anyway.
            self.sock_ll.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        except OSError:
            pass
        for s in (self.sock4, self.sock6, self.sock_ll):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.fd4 = self.sock4.fileno()
        self.fd6 = self.sock6.fileno()
        self.sock_back = None
        self.fd_back = -1
        self.sock_gso = None
        self.fd_gso = -1
        gso = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            gso.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            try:
                gso.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            except OSError:
                pass
            gso.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
            self.sock_gso = gso
            self.fd_gso = gso.fileno()
        except OSError:
            gso.close()
        self.fd_ll = self.sock_ll.fileno()

    def close(self):
        for s in (self.sock4, self.sock6, self.sock_ll):
            s.close()

    # ------------------------------------------------------------ the cache

    cdef NextHop* lookup(self, uint8_t family, const uint8_t* addr, uint32_t now) noexcept nogil:
        """The live entry of a destination, or NULL."""
        cdef NextHop* e = self.cache + bucket_of(self.seed, self.buckets_mask, addr) * NH_WAYS
        cdef int w
        for w in range(NH_WAYS):
            if (e[w].state != NH_EMPTY and e[w].family == family
                    and memcmp(e[w].addr, addr, 16) == 0):
                return NULL if expired(&e[w], now) else &e[w]
        return NULL

    cdef NextHop* slot_for(self, uint8_t family, const uint8_t* addr, uint32_t now) noexcept nogil:
        """Where a destination's entry goes: its own, else a free or dead one, else
        the one that expires first."""
        cdef NextHop* e = self.cache + bucket_of(self.seed, self.buckets_mask, addr) * NH_WAYS
        cdef NextHop* victim = NULL
        cdef int w
        for w in range(NH_WAYS):
            if (e[w].state != NH_EMPTY and e[w].family == family
                    and memcmp(e[w].addr, addr, 16) == 0):
                return &e[w]
        for w in range(NH_WAYS):
            if e[w].state == NH_EMPTY or expired(&e[w], now):
                return &e[w]
            if victim == NULL or <int32_t>(e[w].expires - victim.expires) < 0:
                victim = &e[w]
        return victim

    cdef void note_miss(self, uint8_t family, const uint8_t* addr, uint32_t now) noexcept nogil:
        cdef NextHop* e
        if self.nmiss >= NH_MISS_MAX:
            return                  # the next drain queues it again
        e = self.slot_for(family, addr, now)
        if e.state == NH_USABLE and e.family == family and memcmp(e.addr, addr, 16) == 0:
            # An entry that merely aged out: its next hop is still the likeliest
            # one. Kept (stale) while the kernel confirms it, for what only a packet
            # socket can send (super-frames); the rest goes through the kernel.
            e.stale = 1
        else:
            memset(e, 0, sizeof(NextHop))
            memcpy(e.addr, addr, 16)
            e.family = family
        e.state = NH_PENDING
        e.expires = now + self.pending_ms
        memcpy(self.miss_addr + self.nmiss * 16, addr, 16)
        self.miss_family[self.nmiss] = family
        self.nmiss += 1
        self.counters[JDP_NH_MISSES] += 1

    @staticmethod
    def _key(int family, addr):
        raw = bytes(addr)
        if family == 4 and len(raw) == 4:
            return raw + bytes(12)
        if family == 6 and len(raw) == 16:
            return raw
        raise ValueError("an IPv%d address has %d bytes" % (family, 4 if family == 4 else 16))

    def misses(self):
        """The destinations queued since the last call, as (family, address bytes)."""
        out = []
        for i in range(self.nmiss):
            fam = self.miss_family[i]
            raw = bytes(self.miss_addr[i * 16:(i + 1) * 16])
            out.append((fam, raw[:4] if fam == 4 else raw))
        self.nmiss = 0
        return out

    def learn(self, int family, addr, int ifindex, dst_mac, src_mac, int mtu,
              uint32_t now, uint32_t ttl_ms=5000):
        """Caches a resolved next hop for ttl_ms."""
        cdef bytes key = self._key(family, addr)
        cdef bytes header = bytes(dst_mac) + bytes(src_mac) + (
            b"\x08\x00" if family == 4 else b"\x86\xdd")
        cdef NextHop* e
        if len(header) != ETH_HLEN:
            raise ValueError("MAC addresses have six bytes")
        if not 68 <= mtu <= 65535:
            raise ValueError("bad MTU %d" % mtu)
        e = self.slot_for(family, key, now)
        memset(e, 0, sizeof(NextHop))
        memcpy(e.addr, <const uint8_t*>key, 16)
        e.family = family
        e.ifindex = ifindex
        e.mtu = mtu
        memcpy(e.eth, <const uint8_t*>header, ETH_HLEN)
        e.expires = now + ttl_ms
        e.state = NH_USABLE
        self.counters[JDP_NH_LEARNED] += 1

    def refuse(self, int family, addr, uint32_t now, uint32_t ttl_ms=1000):
        """Leaves a destination to the kernel for ttl_ms before trying again."""
        cdef bytes key = self._key(family, addr)
        cdef NextHop* e = self.slot_for(family, key, now)
        memset(e, 0, sizeof(NextHop))
        memcpy(e.addr, <const uint8_t*>key, 16)
        e.family = family
        e.expires = now + ttl_ms
        e.state = NH_REFUSED
        self.counters[JDP_NH_REFUSED] += 1

    def flush(self):
        """Forgets every next hop (routes, links or neighbours changed). Queued
        misses stay queued: they are resolved against the new state."""
        memset(self.cache, 0, (self.buckets_mask + 1) * NH_WAYS * sizeof(NextHop))

    def entry(self, int family, addr, uint32_t now):
        """The live entry of a destination as a dict (tests, diagnostics), or None."""
        cdef bytes key = self._key(family, addr)
        cdef NextHop* e = self.lookup(family, key, now)
        if e == NULL:
            return None
        state = {NH_USABLE: "usable", NH_PENDING: "pending", NH_REFUSED: "refused"}[e.state]
        return {"state": state, "ifindex": e.ifindex, "mtu": e.mtu,
                "eth": bytes(e.eth[:ETH_HLEN]), "stale": bool(e.stale)}

    # ------------------------------------------------------------ sending

    cdef uint32_t transmit(self, Out* o, uint32_t now) noexcept nogil:
        """Sends every output record: cached next hops on the packet socket, the
        rest through the kernel. Returns the packets sent."""
        cdef mmsghdr ll_msgs[TX_BATCH]
        cdef iovec ll_iovs[TX_BATCH * 2]
        cdef sockaddr_ll ll_addrs[TX_BATCH]
        cdef mmsghdr k_msgs[TX_BATCH]
        cdef iovec k_iovs[TX_BATCH]
        cdef sockaddr_in dst4[TX_BATCH]
        cdef sockaddr_in6 dst6[TX_BATCH]
        cdef uint8_t k_family[TX_BATCH]
        cdef uint32_t i, n_ll = 0, n_k = 0, sent = 0, n_gso = 0
        cdef uint32_t gso_recs[TX_BATCH]
        cdef NextHop* gso_hops[TX_BATCH]
        cdef uint8_t key[16]
        cdef uint8_t family
        cdef uint8_t* pkt
        cdef uint32_t length
        cdef NextHop* e
        for i in range(o.n):
            pkt = o.buf + o.rec_off[i]
            length = o.rec_len[i]
            family = o.rec_kind[i] & 0xf
            memset(key, 0, 16)
            if family == 4:
                memcpy(key, pkt + 16, 4)
            else:
                memcpy(key, pkt + 24, 16)
            e = NULL
            if self.cache_enabled:
                e = self.lookup(family, key, now)
                if e == NULL:
                    self.note_miss(family, key, now)
            if o.rec_gso != NULL and o.rec_gso[i] != 0:
                # A super-frame: only a cached next hop can take it whole (the
                # kernel's IP path would refuse it); until then TCP retransmits.
                if e == NULL and self.cache_enabled:
                    e = self.lookup(family, key, now)       # note_miss() may keep it, stale
                if e != NULL and (e.state == NH_USABLE or (e.state == NH_PENDING and e.stale)) \
                        and self.fd_gso >= 0:
                    gso_recs[n_gso] = i
                    gso_hops[n_gso] = e
                    n_gso += 1
                    if n_gso == TX_BATCH:
                        sent += self.send_gso(o, gso_recs, gso_hops, n_gso)
                        n_gso = 0
                else:
                    self.counters[JDP_TX_ERRORS] += 1
                continue
            if e != NULL and e.state == NH_USABLE and length <= e.mtu:
                ll_message(&ll_msgs[n_ll], &ll_addrs[n_ll], &ll_iovs[2 * n_ll], e.ifindex,
                           e.eth, NULL, pkt, length)
                n_ll += 1
                if n_ll == TX_BATCH:
                    sent += self.send_all(self.fd_ll, ll_msgs, n_ll, JDP_TX_CACHED)
                    n_ll = 0
            else:
                memset(&k_msgs[n_k], 0, sizeof(mmsghdr))
                k_iovs[n_k].iov_base = pkt
                k_iovs[n_k].iov_len = length
                if family == 4:
                    memset(&dst4[n_k], 0, sizeof(sockaddr_in))
                    dst4[n_k].sin_family = AF_INET
                    memcpy(&dst4[n_k].sin_addr, key, 4)
                    k_msgs[n_k].msg_hdr.msg_name = &dst4[n_k]
                    k_msgs[n_k].msg_hdr.msg_namelen = sizeof(sockaddr_in)
                else:
                    memset(&dst6[n_k], 0, sizeof(sockaddr_in6))
                    dst6[n_k].sin6_family = AF_INET6
                    memcpy(&dst6[n_k].sin6_addr, key, 16)
                    k_msgs[n_k].msg_hdr.msg_name = &dst6[n_k]
                    k_msgs[n_k].msg_hdr.msg_namelen = sizeof(sockaddr_in6)
                k_msgs[n_k].msg_hdr.msg_iov = &k_iovs[n_k]
                k_msgs[n_k].msg_hdr.msg_iovlen = 1
                k_family[n_k] = family
                n_k += 1
                if n_k == TX_BATCH:
                    sent += self.send_kernel(k_msgs, k_family, n_k)
                    n_k = 0
        if n_gso:
            sent += self.send_gso(o, gso_recs, gso_hops, n_gso)
        if n_ll:
            sent += self.send_all(self.fd_ll, ll_msgs, n_ll, JDP_TX_CACHED)
        if n_k:
            sent += self.send_kernel(k_msgs, k_family, n_k)
        return sent

    cdef uint32_t send_kernel(self, mmsghdr* msgs, uint8_t* family, uint32_t n) noexcept nogil:
        """One sendmmsg() per run of the same family, in order."""
        cdef uint32_t i = 0, j, sent = 0
        while i < n:
            j = i
            while j < n and family[j] == family[i]:
                j += 1
            sent += self.send_all(self.fd4 if family[i] == 4 else self.fd6, msgs + i,
                                  j - i, JDP_TX_KERNEL)
            i = j
        return sent

    cdef uint32_t send_all(self, int fd, mmsghdr* msgs, uint32_t n, int counter) noexcept nogil:
        cdef uint32_t k = 0, sent = 0
        cdef int rc
        while k < n:
            rc = sendmmsg(fd, msgs + k, n - k, 0)
            if rc <= 0:
                self.counters[JDP_TX_ERRORS] += 1   # this one failed (no route, too big...)
                k += 1
            else:
                sent += rc
                k += rc
        self.counters[counter] += sent
        return sent

    cdef uint32_t send_gso(self, Out* o, uint32_t* records, NextHop** hops,
                           uint32_t n) noexcept nogil:
        """Super-frames on the virtio-net-header socket: the kernel (or the
        peer, for veth) cuts them into segments of gso_size and fills in each
        segment's TCP checksum from the pseudo-header sum the translator left."""
        cdef mmsghdr msgs[TX_BATCH]
        cdef iovec iovs[TX_BATCH * 3]
        cdef sockaddr_ll addrs[TX_BATCH]
        cdef uint8_t vnet[TX_BATCH][VNET_HDR_LEN]
        cdef uint32_t k, r, iphl, thl
        cdef uint16_t v
        cdef uint8_t* pkt
        cdef uint8_t family
        for k in range(n):
            r = records[k]
            pkt = o.buf + o.rec_off[r]
            family = o.rec_kind[r] & 0xf
            iphl = 20 if family == 4 else 40
            thl = (pkt[iphl + 12] >> 4) * 4
            vnet[k][0] = VNET_F_NEEDS_CSUM
            vnet[k][1] = VNET_GSO_TCPV4 if family == 4 else VNET_GSO_TCPV6
            v = ETH_HLEN + iphl + thl                   # hdr_len
            memcpy(&vnet[k][2], &v, 2)
            v = o.rec_gso[r]                            # gso_size
            memcpy(&vnet[k][4], &v, 2)
            v = ETH_HLEN + iphl                         # csum_start
            memcpy(&vnet[k][6], &v, 2)
            v = 16                                      # csum_offset (TCP)
            memcpy(&vnet[k][8], &v, 2)
            ll_message(&msgs[k], &addrs[k], &iovs[3 * k], hops[k].ifindex, hops[k].eth,
                       vnet[k], pkt, o.rec_len[r])
        return self.send_all(self.fd_gso, msgs, n, JDP_GSO_SENT)

    @property
    def gso_ready(self):
        """Whether super-frames can be handed to the kernel whole."""
        return self.fd_gso >= 0

    # ------------------------------------------------------------ the hand-back link

    def set_hand_back(self, ifname, peer_mac):
        """Packets handed back leave on ifname (control/kernel.py HANDBACK_TX),
        addressed to its peer's MAC so the kernel takes them as its own."""
        cdef int k
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        except OSError:
            pass
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        own = bytes.fromhex(open(f"/sys/class/net/{ifname}/address").read().strip()
                            .replace(":", ""))
        peer = bytes.fromhex(peer_mac.replace(":", ""))
        for k, ethertype in enumerate((b"\x08\x00", b"\x86\xdd")):
            header = peer + own + ethertype
            for i in range(ETH_HLEN):
                self.back_eth[k][i] = header[i]
        if self.sock_back is not None:
            self.sock_back.close()
        self.sock_back = sock
        self.fd_back = sock.fileno()
        self.back_ifindex = socket.if_nametoindex(ifname)

    cdef uint32_t hand_back(self, uint8_t** packets, const uint32_t* lengths,
                            uint32_t n) noexcept nogil:
        """Gives claimed packets the translator passed to the kernel (nothing
        without a hand-back link: they stay dropped, counted by their reason)."""
        cdef mmsghdr msgs[TX_BATCH]
        cdef iovec iovs[TX_BATCH * 2]
        cdef sockaddr_ll addrs[TX_BATCH]
        cdef uint32_t i, k = 0, sent = 0
        cdef uint8_t v6
        if self.fd_back < 0:
            return 0
        for i in range(n):
            v6 = 1 if (packets[i][0] >> 4) == 6 else 0
            ll_message(&msgs[k], &addrs[k], &iovs[2 * k], self.back_ifindex, self.back_eth[v6],
                       NULL, packets[i], lengths[i])
            k += 1
            if k == TX_BATCH:
                sent += self.send_all(self.fd_back, msgs, k, JDP_HANDED_BACK)
                k = 0
        if k:
            sent += self.send_all(self.fd_back, msgs, k, JDP_HANDED_BACK)
        return sent

    def send(self, packets, uint32_t now):
        """Sends a list of complete IP packets the way a drain does (tests, the
        timer pass); returns how many left."""
        cdef Out o
        cdef uint32_t offs[TX_BATCH]
        cdef uint32_t lens[TX_BATCH]
        cdef uint32_t inputs[TX_BATCH]
        cdef uint8_t kinds[TX_BATCH]
        cdef cnp.uint8_t[::1] view
        cdef uint32_t total = 0, sent, pos = 0
        chunks = [packets[i:i + TX_BATCH] for i in range(0, len(packets), TX_BATCH)]
        for chunk in chunks:
            buf = np.frombuffer(b"".join(bytes(p) for p in chunk) or b"\0", dtype=np.uint8).copy()
            view = buf
            pos = 0
            for i, p in enumerate(chunk):
                offs[i] = pos
                lens[i] = len(p)
                kinds[i] = bytes(p[:1])[0] >> 4
                inputs[i] = i
                pos += len(p)
            out_init(&o, &view[0], buf.shape[0], offs, lens, inputs, kinds, NULL, TX_BATCH)
            o.n = len(chunk)
            with nogil:
                sent = self.transmit(&o, now)
            total += sent
        return total
