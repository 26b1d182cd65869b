# Atomics between processes sharing memory (GCC __atomic builtins), a spinlock
# that survives its holder's death, and seqlock helpers.
#
# The lock word holds the holder's pid. A waiter that has spun for a while checks
# whether the holder still lives (kill(pid, 0)); if it died (a worker SIGKILLed while
# creating a session) the lock is taken over, so the other processes carry on.

from libc.stdint cimport uint32_t, uint64_t, int32_t

cdef extern from *:
    """
    #include <sched.h>
    #include <signal.h>
    #include <errno.h>
    #include <unistd.h>
    static inline uint32_t jool_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline uint32_t jool_load32_relaxed(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void jool_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline void jool_store32_relaxed(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    static inline uint64_t jool_fetch_add64(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
    static inline uint64_t jool_load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void jool_store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline uint32_t jool_xchg32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void jool_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
    static inline void jool_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
    static inline int jool_cas32(uint32_t *p, uint32_t expected, uint32_t desired) {
        return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    }
    static inline void jool_cpu_relax(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #endif
    }
    static inline int jool_pid_alive(uint32_t pid) { return kill((pid_t)pid, 0) == 0 || errno != ESRCH; }
    static inline uint32_t jool_getpid(void) { return (uint32_t)getpid(); }
    static inline void jool_yield(void) { sched_yield(); }
    static inline void jool_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
    static inline void jool_prefetch_w(const void *p) { __builtin_prefetch(p, 1, 3); }
    """
    uint32_t jool_load32(const uint32_t* p) nogil
    uint32_t jool_load32_relaxed(const uint32_t* p) nogil
    void jool_store32(uint32_t* p, uint32_t v) nogil
    void jool_store32_relaxed(uint32_t* p, uint32_t v) nogil
    uint64_t jool_fetch_add64(uint64_t* p, uint64_t v) nogil
    uint64_t jool_load64(const uint64_t* p) nogil
    void jool_store64(uint64_t* p, uint64_t v) nogil
    uint32_t jool_xchg32(uint32_t* p, uint32_t v) nogil
    void jool_fence_acquire() nogil
    void jool_fence_release() nogil
    bint jool_cas32(uint32_t* p, uint32_t expected, uint32_t desired) nogil
    void jool_cpu_relax() nogil
    bint jool_pid_alive(uint32_t pid) nogil
    uint32_t jool_getpid() nogil
    void jool_yield() nogil
    void jool_prefetch(const void* p) nogil
    void jool_prefetch_w(const void* p) nogil


cdef inline void lock_acquire(uint32_t* word, uint32_t me) noexcept nogil:
    cdef uint32_t spins = 0
    cdef uint32_t holder
    while True:
        holder = jool_load32_relaxed(word)
        if holder == 0:
            if jool_cas32(word, 0, me):
                return
        else:
            spins += 1
            if spins & 0x3ff == 0:
                if not jool_pid_alive(holder):
                    if jool_cas32(word, holder, me):    # the holder died holding it
                        return
                jool_yield()
            else:
                jool_cpu_relax()


cdef inline void lock_release(uint32_t* word) noexcept nogil:
    jool_store32(word, 0)


cdef inline uint32_t seq_write_begin(uint32_t* seq) noexcept nogil:
    cdef uint32_t s = jool_load32_relaxed(seq) + 1      # odd: being written
    jool_store32_relaxed(seq, s)
    jool_fence_release()
    return s


cdef inline void seq_write_end(uint32_t* seq, uint32_t s) noexcept nogil:
    jool_store32(seq, s + 1)                            # even again, after the writes
