# SipHash-2-4 (Aumasson & Bernstein), a keyed hash: a remote host that does not
# know the per-instance key cannot aim many flows at one bucket (DESIGN.md, Tables).

from libc.stdint cimport uint8_t, uint64_t, uint32_t
from libc.string cimport memcpy

cdef inline uint64_t _rotl(uint64_t x, int b) noexcept nogil:
    return (x << b) | (x >> (64 - b))


cdef inline void _round(uint64_t* v) noexcept nogil:
    v[0] += v[1]; v[1] = _rotl(v[1], 13); v[1] ^= v[0]; v[0] = _rotl(v[0], 32)
    v[2] += v[3]; v[3] = _rotl(v[3], 16); v[3] ^= v[2]
    v[0] += v[3]; v[3] = _rotl(v[3], 21); v[3] ^= v[0]
    v[2] += v[1]; v[1] = _rotl(v[1], 17); v[1] ^= v[2]; v[2] = _rotl(v[2], 32)


cdef inline uint64_t siphash24(const uint64_t* key, const uint8_t* data, uint32_t n) noexcept nogil:
    """SipHash-2-4 of n bytes (little-endian word order, as the reference)."""
    cdef uint64_t v[4]
    cdef uint64_t m, b = (<uint64_t>n) << 56
    cdef uint32_t i, left = n & 7, end = n - left
    cdef uint8_t tail[8]
    v[0] = key[0] ^ 0x736f6d6570736575ULL
    v[1] = key[1] ^ 0x646f72616e646f6dULL
    v[2] = key[0] ^ 0x6c7967656e657261ULL
    v[3] = key[1] ^ 0x7465646279746573ULL
    i = 0
    while i < end:
        memcpy(&m, data + i, 8)          # little-endian hosts (x86-64, aarch64)
        v[3] ^= m
        _round(v); _round(v)
        v[0] ^= m
        i += 8
    for i in range(8):
        tail[i] = 0
    for i in range(left):
        tail[i] = data[end + i]
    memcpy(&m, tail, 8)
    b |= m
    v[3] ^= b
    _round(v); _round(v)
    v[0] ^= b
    v[2] ^= 0xff
    _round(v); _round(v); _round(v); _round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]
