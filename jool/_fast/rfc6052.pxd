# RFC 6052 §2.2: IPv4-embedded IPv6 addresses.
#
# The pool6 prefix is stored as 16 bytes whose bits past the prefix length are
# zero (validated by the control plane). Bits 64-71 (byte 8, the "u" octet) are
# never used for IPv4 bits, so for /40 /48 /56 the IPv4 address straddles it.

from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcpy, memcmp

cdef struct Prefix6:
    uint8_t addr[16]
    uint8_t length          # 32, 40, 48, 56, 64 or 96


cdef inline bint prefix6_contains(const Prefix6* pfx, const uint8_t* addr) noexcept nogil:
    cdef uint32_t i
    for i in range(pfx.length >> 3):
        if pfx.addr[i] != addr[i]:
            return False
    return True


cdef inline void rfc6052_embed(const Prefix6* pfx, const uint8_t* v4, uint8_t* out) noexcept nogil:
    """out (16 bytes) = pool6 prefix with the IPv4 address v4 (4 bytes) embedded."""
    memcpy(out, pfx.addr, 16)
    if pfx.length == 96:
        memcpy(out + 12, v4, 4)
    elif pfx.length == 64:
        out[8] = 0
        memcpy(out + 9, v4, 4)
    elif pfx.length == 56:
        out[7] = v4[0]
        out[8] = 0
        memcpy(out + 9, v4 + 1, 3)
    elif pfx.length == 48:
        memcpy(out + 6, v4, 2)
        out[8] = 0
        memcpy(out + 9, v4 + 2, 2)
    elif pfx.length == 40:
        memcpy(out + 5, v4, 3)
        out[8] = 0
        out[9] = v4[3]
    else:  # 32
        memcpy(out + 4, v4, 4)


cdef inline void rfc6052_extract(const Prefix6* pfx, const uint8_t* addr, uint8_t* v4) noexcept nogil:
    """v4 (4 bytes) = the IPv4 address embedded in addr (caller checked membership)."""
    if pfx.length == 96:
        memcpy(v4, addr + 12, 4)
    elif pfx.length == 64:
        memcpy(v4, addr + 9, 4)
    elif pfx.length == 56:
        v4[0] = addr[7]
        memcpy(v4 + 1, addr + 9, 3)
    elif pfx.length == 48:
        memcpy(v4, addr + 6, 2)
        memcpy(v4 + 2, addr + 9, 2)
    elif pfx.length == 40:
        memcpy(v4, addr + 5, 3)
        v4[3] = addr[9]
    else:  # 32
        memcpy(v4, addr + 4, 4)
