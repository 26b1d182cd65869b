# Bounded big-endian access to packet bytes.
#
# Every read or write of packet memory in the kernels goes through these helpers,
# each naming the buffer's capacity. In the release build the capacity is ignored
# and each helper is a plain load or store. In the checked build (JOOL_CHECKED=1,
# see setup.py) an access that would leave its buffer is not performed; it is
# counted in jool_bounds_violations, which the tests assert stays zero. Parsing is
# what guarantees in-bounds access; this is the net under it.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove, memset

cdef extern from *:
    """
    #ifndef JOOL_CHECKED
    #define JOOL_CHECKED 0
    #endif
    static unsigned long long jool_bounds_violations = 0;
    """
    const int JOOL_CHECKED
    unsigned long long jool_bounds_violations


cdef inline bint outside(uint32_t cap, uint32_t off, uint32_t n) noexcept nogil:
    global jool_bounds_violations
    if JOOL_CHECKED and <uint64_t>off + n > cap:
        jool_bounds_violations += 1
        return True
    return False


cdef inline uint8_t rd8(const uint8_t* p, uint32_t cap, uint32_t off) noexcept nogil:
    if outside(cap, off, 1):
        return 0
    return p[off]


cdef inline uint16_t rd16(const uint8_t* p, uint32_t cap, uint32_t off) noexcept nogil:
    if outside(cap, off, 2):
        return 0
    return (<uint16_t>p[off] << 8) | p[off + 1]


cdef inline uint32_t rd32(const uint8_t* p, uint32_t cap, uint32_t off) noexcept nogil:
    if outside(cap, off, 4):
        return 0
    return ((<uint32_t>p[off] << 24) | (<uint32_t>p[off + 1] << 16)
            | (<uint32_t>p[off + 2] << 8) | p[off + 3])


cdef inline void wr8(uint8_t* p, uint32_t cap, uint32_t off, uint8_t v) noexcept nogil:
    if outside(cap, off, 1):
        return
    p[off] = v


cdef inline void wr16(uint8_t* p, uint32_t cap, uint32_t off, uint16_t v) noexcept nogil:
    if outside(cap, off, 2):
        return
    p[off] = v >> 8
    p[off + 1] = v & 0xff


cdef inline void wr32(uint8_t* p, uint32_t cap, uint32_t off, uint32_t v) noexcept nogil:
    if outside(cap, off, 4):
        return
    p[off] = v >> 24
    p[off + 1] = (v >> 16) & 0xff
    p[off + 2] = (v >> 8) & 0xff
    p[off + 3] = v & 0xff


cdef inline void copy(uint8_t* dst, uint32_t dcap, uint32_t doff,
                      const uint8_t* src, uint32_t scap, uint32_t soff,
                      uint32_t n) noexcept nogil:
    if n == 0 or outside(dcap, doff, n) or outside(scap, soff, n):
        return
    memmove(dst + doff, src + soff, n)


cdef inline void zero(uint8_t* dst, uint32_t dcap, uint32_t doff, uint32_t n) noexcept nogil:
    if n == 0 or outside(dcap, doff, n):
        return
    memset(dst + doff, 0, n)


cdef inline bint same(const uint8_t* a, uint32_t acap, uint32_t aoff,
                      const uint8_t* b, uint32_t bcap, uint32_t boff, uint32_t n) noexcept nogil:
    cdef uint32_t i
    if outside(acap, aoff, n) or outside(bcap, boff, n):
        return False
    for i in range(n):
        if a[aoff + i] != b[boff + i]:
            return False
    return True


cdef inline bint same16(const uint8_t* a, const uint8_t* b) noexcept nogil:
    """Two 16-byte addresses are equal (no libc call on the hot path)."""
    cdef uint64_t a0, a1, b0, b1
    memcpy(&a0, a, 8); memcpy(&a1, a + 8, 8)
    memcpy(&b0, b, 8); memcpy(&b1, b + 8, 8)
    return ((a0 ^ b0) | (a1 ^ b1)) == 0


cdef inline bint same4(const uint8_t* a, const uint8_t* b) noexcept nogil:
    cdef uint32_t x, y
    memcpy(&x, a, 4); memcpy(&y, b, 4)
    return x == y


cdef inline uint32_t be32(const uint8_t* a) noexcept nogil:
    return (<uint32_t>a[0] << 24) | (<uint32_t>a[1] << 16) | (<uint32_t>a[2] << 8) | a[3]
