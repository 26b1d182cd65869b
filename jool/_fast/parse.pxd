from libc.stdint cimport uint8_t, uint32_t
from jool._fast.packet cimport IPInfo

cdef int parse_ipv6(const uint8_t* p, uint32_t cap, uint32_t start, uint32_t avail,
                    bint inner, IPInfo* info) noexcept nogil
cdef int parse_ipv4(const uint8_t* p, uint32_t cap, uint32_t start, uint32_t avail,
                    bint inner, IPInfo* info) noexcept nogil
