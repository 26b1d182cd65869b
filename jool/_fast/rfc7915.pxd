from libc.stdint cimport uint8_t, uint32_t
from jool._fast.packet cimport Ctx, IPInfo, Mapping, Out

cdef int translate_6to4(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in6,
                        const Mapping* m, bint partial, Out* o) noexcept nogil
cdef int translate_4to6(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in4,
                        const Mapping* m, bint partial, Out* o) noexcept nogil
cdef int translate_icmp6_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* out6,
                               const Mapping* m, Out* o) noexcept nogil
cdef int translate_icmp4_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* out4,
                               const Mapping* m, Out* o) noexcept nogil
cdef int emit_icmp6_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in6,
                          uint8_t type, uint8_t code, uint32_t rest, Out* o) noexcept nogil
cdef int emit_icmp4_error(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in4,
                          uint8_t type, uint8_t code, uint32_t rest, Out* o) noexcept nogil
cdef int emit_icmp4_error_from(Ctx* ctx, const uint8_t* p, uint32_t cap, const IPInfo* in4,
                               uint8_t type, uint8_t code, uint32_t rest, const uint8_t* src4,
                               Out* o) noexcept nogil
