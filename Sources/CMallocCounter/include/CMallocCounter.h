#pragma once
// Counts heap allocations in the ntpbench process, to prove hot paths allocate nothing.
// counter.c replaces malloc and friends (glibc allows the main program to do so), forwards
// each call to glibc's own allocator and counts it. Linked into ntpbench only.

/// Number of allocating calls so far (malloc, calloc, realloc, posix_memalign, aligned_alloc,
/// memalign, valloc, pvalloc). Monotonic; subtract two readings around the code under test.
unsigned long long stratum_malloc_count(void);

/// Number of free() calls of non-NULL pointers so far.
unsigned long long stratum_free_count(void);
