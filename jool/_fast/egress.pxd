from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t, uint64_t
from jool._fast.packet cimport Out

cdef extern from "<sys/socket.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len
    struct msghdr:
        void* msg_name
        unsigned int msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int sendmmsg(int fd, mmsghdr* msgs, unsigned int vlen, int flags)

cdef enum:
    NH_WAYS = 4                 # entries per bucket of the next-hop cache
    NH_MISS_MAX = 64            # destinations queued for resolution per drain
    NH_EMPTY = 0
    NH_USABLE = 1               # send on the packet socket with this header
    NH_PENDING = 2              # queued for resolution: the kernel sends meanwhile
    NH_REFUSED = 3              # not cacheable (no neighbour yet, local, ...)
    NH_FAMILIES = 2

cdef struct NextHop:
    uint8_t addr[16]            # destination (IPv4 in the first four bytes)
    uint32_t expires            # ms, CLOCK_MONOTONIC wrapping (instance.now_ms)
    int32_t ifindex
    uint16_t mtu
    uint8_t state
    uint8_t family              # 4 or 6
    uint8_t eth[14]             # destination MAC, source MAC, EtherType
    uint8_t stale               # PENDING, but eth/ifindex/mtu are the expired entry's
    uint8_t pad[21]             # 64 bytes: one cache line


cdef class Egress:
    cdef readonly object sock4, sock6, sock_ll
    cdef int fd4, fd6, fd_ll
    cdef NextHop* cache
    cdef object _cache_array, _counters_array
    cdef uint32_t buckets_mask
    cdef uint64_t seed
    cdef uint64_t* counters
    cdef uint8_t miss_addr[NH_MISS_MAX * 16]
    cdef uint8_t miss_family[NH_MISS_MAX]
    cdef uint32_t nmiss
    cdef uint32_t pending_ms
    cdef readonly bint cache_enabled
    cdef readonly object sock_gso   # packet socket with virtio-net headers (super-frames)
    cdef int fd_gso
    cdef readonly object sock_back
    cdef int fd_back, back_ifindex
    cdef uint8_t back_eth[2][14]    # the hand-back link's headers: IPv4, IPv6

    cdef NextHop* lookup(self, uint8_t family, const uint8_t* addr, uint32_t now) noexcept nogil
    cdef NextHop* slot_for(self, uint8_t family, const uint8_t* addr, uint32_t now) noexcept nogil
    cdef uint32_t transmit(self, Out* o, uint32_t now) noexcept nogil
    cdef void note_miss(self, uint8_t family, const uint8_t* addr, uint32_t now) noexcept nogil
    cdef uint32_t send_kernel(self, mmsghdr* msgs, uint8_t* family, uint32_t n) noexcept nogil
    cdef uint32_t send_all(self, int fd, mmsghdr* msgs, uint32_t n, int counter) noexcept nogil
    cdef uint32_t send_gso(self, Out* o, uint32_t* records, NextHop** hops,
                           uint32_t n) noexcept nogil
    cdef uint32_t hand_back(self, uint8_t** packets, const uint32_t* lengths, uint32_t n) noexcept nogil
