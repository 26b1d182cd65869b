# The translator's C-level face, for modules that feed it packets without a copy
# (rings.pyx hands it a ring block directly).

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from jool._fast.packet cimport XlatConfig, Nat64Config, Ctx, Out
from jool._fast.tables cimport Tables

cdef uint32_t run_batch(Ctx* ctx, const uint8_t* inbuf, uint32_t incap,
                        const uint32_t* in_off, const uint32_t* in_len, const uint8_t* in_flags,
                        const uint8_t* map_addr, const uint16_t* map_port, const uint32_t* marks,
                        uint32_t count, uint8_t* verdicts, uint16_t* reasons, Out* o) noexcept nogil
cdef uint32_t copy_batch(const uint8_t* inbuf, uint32_t incap, const uint32_t* in_off,
                         const uint32_t* in_len, uint32_t count, uint8_t* verdicts,
                         Out* o) noexcept nogil


cdef class Batch:
    cdef readonly object input, in_offset, in_length, in_flags, in_mark, map_addr, map_port
    cdef readonly object verdict, reason, in_gso, out_gso
    cdef readonly object out, out_offset, out_length, out_input, out_kind
    cdef public uint32_t count
    cdef readonly uint32_t out_count
    cdef readonly uint32_t capacity
    cdef uint32_t fill


cdef class Translator:
    cdef XlatConfig cfg
    cdef Nat64Config nat
    cdef Ctx ctx
    cdef readonly object counters
    cdef readonly Tables tables
    cdef readonly object pool4
    cdef object _sets, _ranges, _members
    cdef Batch _single
    cdef dict _options
    cdef void _bind_out(self, Batch b, Out* o)
