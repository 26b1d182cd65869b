from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef packed struct Slot

cdef class Reassembler:
    cdef uint32_t nslots
    cdef object _slots, _data, _out
    cdef Slot* slots
    cdef uint8_t* data
    cdef uint8_t* out
    cdef public uint64_t completed, discarded, evicted
    cdef Slot* find(self, const uint8_t* p, uint32_t ident, uint32_t now) noexcept nogil
    cdef int add(self, const uint8_t* p, uint32_t n, uint32_t now,
                 const uint8_t** out, uint32_t* out_len) noexcept nogil
