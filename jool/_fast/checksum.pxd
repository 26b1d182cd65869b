# Internet checksum arithmetic (RFC 1071, RFC 1624).
#
# A "sum" here is the 16-bit one's-complement sum of big-endian words, folded but
# not complemented; a "checksum" is its complement as stored in a header.
# Summation runs over native 32-bit words into a 64-bit accumulator and is
# byte-swapped once at the end: RFC 1071 §2(B), the sum is byte-order independent.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from jool._fast.wire cimport outside, rd16

cdef extern from *:
    """
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define JOOL_TO_BE16(x) (x)
    #else
    #define JOOL_TO_BE16(x) ((uint16_t)__builtin_bswap16((uint16_t)(x)))
    #endif
    """
    uint16_t JOOL_TO_BE16(uint16_t x) nogil


cdef inline uint16_t fold(uint64_t acc) noexcept nogil:
    acc = (acc & 0xffffffffULL) + (acc >> 32)
    acc = (acc & 0xffffffffULL) + (acc >> 32)
    acc = (acc & 0xffff) + (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16)
    return <uint16_t>acc


cdef inline uint16_t sum_bytes(const uint8_t* p, uint32_t cap, uint32_t off, uint32_t n) noexcept nogil:
    """Sum of bytes [off, off+n) as big-endian 16-bit words (odd tail zero-padded)."""
    cdef uint64_t acc = 0
    cdef uint32_t w32
    cdef uint16_t w16 = 0
    cdef const uint8_t* q
    if n == 0 or outside(cap, off, n):
        return 0
    q = p + off
    while n >= 16:
        memcpy(&w32, q, 4); acc += w32
        memcpy(&w32, q + 4, 4); acc += w32
        memcpy(&w32, q + 8, 4); acc += w32
        memcpy(&w32, q + 12, 4); acc += w32
        q += 16
        n -= 16
    while n >= 4:
        memcpy(&w32, q, 4)
        acc += w32
        q += 4
        n -= 4
    if n >= 2:
        memcpy(&w16, q, 2)
        acc += w16
        q += 2
        n -= 2
    if n == 1:
        w16 = 0
        (<uint8_t*>&w16)[0] = q[0]
        acc += w16
    return JOOL_TO_BE16(fold(acc))


cdef inline uint16_t add(uint16_t a, uint16_t b) noexcept nogil:
    """One's-complement addition of two sums."""
    return fold(<uint64_t>a + b)


cdef inline uint16_t sub(uint16_t a, uint16_t b) noexcept nogil:
    """a - b in one's-complement arithmetic."""
    return fold(<uint64_t>a + (<uint16_t>~b))


cdef inline uint16_t finish(uint16_t s) noexcept nogil:
    """The checksum to store for a sum."""
    return <uint16_t>~s


cdef inline uint16_t update(uint16_t check, uint16_t old_sum, uint16_t new_sum) noexcept nogil:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m/m' the sums of the changed words."""
    return <uint16_t>~fold(<uint64_t>(<uint16_t>~check) + (<uint16_t>~old_sum) + new_sum)
