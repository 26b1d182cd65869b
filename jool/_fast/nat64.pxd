from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from jool._fast.packet cimport Ctx, IPInfo, Mapping, Out, Nat64Config

cdef bint pool4_contains(const Nat64Config* nat, const uint8_t* own_empty, uint8_t proto,
                         const uint8_t* addr, uint16_t port) noexcept nogil
cdef int filtering_and_updating_6(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* info,
                                  Mapping* m) noexcept nogil
cdef int filtering_and_updating_4(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* info,
                                  Mapping* m, Out* o) noexcept nogil
cdef int error_mapping_6(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* outer,
                         Mapping* m) noexcept nogil
cdef int error_mapping_4(Ctx* ctx, const uint8_t* p, uint32_t n, const IPInfo* outer,
                         Mapping* m) noexcept nogil
cdef uint32_t expire_pass(Ctx* ctx, uint32_t first, uint32_t count, Out* o) noexcept nogil
cdef int emit_so_unreachable(Ctx* ctx, uint32_t slot, Out* o) noexcept nogil
cdef int notify_stored_syns(Ctx* ctx, uint32_t b, Out* o) noexcept nogil
cdef enum:
    PREFETCH_GROUP = 8              # packets whose cache misses a batch starts together
cdef void prefetch_ahead(Ctx* ctx, const uint8_t* inbuf, uint32_t incap, const uint32_t* in_off,
                         const uint32_t* in_len, uint32_t count, uint32_t g, uint64_t* ring,
                         bint* ring_v6) noexcept nogil
