/*
 * ffclock.h: a header-only C99 reader of the clock that 'ntpclient --publish PATH' writes.
 *
 * No dependencies beyond libc (POSIX open/mmap/clock_gettime). The layout, the
 * sequence-lock protocol, the verdicts and the versioning rules are in
 * docs/published-clock.md; this file follows that document.
 *
 *     #include "ffclock.h"
 *     ffclock_reader r;
 *     int rc = ffclock_open(&r, "/run/ffclock");
 *     if (rc != FFCLOCK_OK) { fprintf(stderr, "%s\n", ffclock_strerror(rc)); return 1; }
 *     ffclock_time t;
 *     rc = ffclock_read(&r, &t);
 *     if (rc == FFCLOCK_OK && t.verdict == FFCLOCK_VERDICT_OK)
 *         printf("%lld ns +/- %.0f ns\n", (long long)t.time_ns, t.max_error_ns);
 *     ffclock_close(&r);
 *
 * Every function is static inline, so the header can be included in several translation
 * units. Link with -lm (floor).
 */
#ifndef FFCLOCK_H
#define FFCLOCK_H

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Layout (docs/published-clock.md, "Layout"), byte offsets of little-endian words. */
#define FFCLOCK_MAGIC 0x314B434F4C434646ULL /* "FFCLOCK1" */
#define FFCLOCK_LAYOUT_VERSION 3
#define FFCLOCK_COUNTER_MONOTONIC_RAW 1
#define FFCLOCK_USED_BYTES 512
#define FFCLOCK_WORD_MAGIC 0
#define FFCLOCK_WORD_VERSION 1
#define FFCLOCK_WORD_SEQUENCE 2
#define FFCLOCK_WORD_CLOCK 3
#define FFCLOCK_WORD_FIELDS 4
#define FFCLOCK_WORD_WRITER_FLAGS 23
#define FFCLOCK_WORD_DISRUPTION_MARKER 24
#define FFCLOCK_WORD_GENERATION 25
#define FFCLOCK_WORD_STALE_GRACE 26
#define FFCLOCK_VMCLOCK_PATH_OFFSET 256
#define FFCLOCK_VMCLOCK_PATH_BYTES 256
#define FFCLOCK_WRITER_STOPPED 1u
#define FFCLOCK_WRITER_VMCLOCK 2u

/* Status bits of the filter (the same bits ntpclient prints as words). */
#define FFCLOCK_STATUS_UNSYNC (1u << 0)
#define FFCLOCK_STATUS_WARMUP (1u << 1)
#define FFCLOCK_STATUS_STARVING (1u << 2)
#define FFCLOCK_STATUS_NO_ESTIMATE (1u << 14)

/* The vmclock page (Linux include/uapi/linux/vmclock-abi.h), only what is needed. */
#define FFCLOCK_VMCLOCK_MAGIC 0x4B4C4356u /* "VCLK" */
#define FFCLOCK_VMCLOCK_VERSION 1
#define FFCLOCK_VMCLOCK_GENERATION_PRESENT (1ULL << 8)

/* ---- Error codes: every call returns FFCLOCK_OK or one of these (negative). */
enum {
    FFCLOCK_OK = 0,
    FFCLOCK_E_OPEN = -1,        /* open(2) failed; errno kept in ffclock_reader.saved_errno */
    FFCLOCK_E_MAP = -2,         /* fstat or mmap failed */
    FFCLOCK_E_SIZE = -3,        /* the file is smaller than a published clock */
    FFCLOCK_E_MAGIC = -4,       /* not a published clock (bad magic) */
    FFCLOCK_E_VERSION = -5,     /* a layout version this reader does not know */
    FFCLOCK_E_COUNTER = -6,     /* a counter other than CLOCK_MONOTONIC_RAW */
    FFCLOCK_E_TORN = -7,        /* every read for 1 s overlapped an update: writer died mid-update */
    FFCLOCK_E_CLOCK = -8,       /* clock_gettime(CLOCK_MONOTONIC_RAW) failed */
    FFCLOCK_E_ARGUMENT = -9     /* a NULL pointer or a closed reader */
};

/* ---- Verdict: how to take the time (docs/published-clock.md, "Verdict"). */
enum {
    FFCLOCK_VERDICT_OK = 0,        /* synchronised, fresh, writer running, no disruption */
    FFCLOCK_VERDICT_UNSYNC = 1,    /* the filter does not vouch yet; the bound still holds */
    FFCLOCK_VERDICT_STALE = 2,     /* next stamp overdue by more than the stale grace */
    FFCLOCK_VERDICT_STOPPED = 3,   /* the writer exited cleanly */
    FFCLOCK_VERDICT_DISRUPTED = 4, /* vmclock marker changed: counter disrupted, time unknown */
    FFCLOCK_VERDICT_UNUSABLE = 5   /* no estimate, or over 1024 s overdue */
};

enum { FFCLOCK_FRESH = 0, FFCLOCK_STALE = 1, FFCLOCK_UNUSABLE = 2 };

/* The published parameters, in layout order. */
typedef struct ffclock_parameters {
    int64_t counter_origin;
    int64_t time_at_origin_ns;
    double time_at_origin_fraction;
    double period;             /* seconds per tick (Cd) */
    double period_error;
    double period_error_bound;
    double local_period;       /* seconds per tick (Ca extrapolation) */
    double offset_ns;
    double error_estimate_ns;
    double max_error_ns;       /* at last_stamp_counter */
    double max_error_growth_rate;
    int64_t last_stamp_counter;
    int64_t next_stamp_expected_counter;
    uint8_t leap;
    uint32_t status;
    double last_rtt_ns;
    double minimum_rtt_ns;
    double naive_offset_ns;
    int64_t stamp_count;
    /* Writer words. */
    uint64_t writer_flags;
    uint64_t disruption_marker;
    uint64_t generation;
    int64_t stale_grace_ns;
    uint64_t sequence;
} ffclock_parameters;

typedef struct ffclock_time {
    int64_t time_ns;           /* Ca(now), Unix ns */
    double max_error_ns;       /* hard bound aged to now; INFINITY when disrupted */
    uint32_t status;           /* published status bits plus STARVING */
    int verdict;               /* FFCLOCK_VERDICT_* */
    int freshness;             /* FFCLOCK_FRESH / STALE / UNUSABLE (stale grace applied) */
    int64_t counter_ns;        /* the CLOCK_MONOTONIC_RAW read used */
    int marker_checked;        /* 1 when the live vmclock marker was compared */
    uint64_t live_disruption_marker;
    uint64_t live_generation;
    ffclock_parameters params;
    int retries;
} ffclock_time;

typedef struct ffclock_reader {
    const volatile uint64_t *words;
    size_t size;
    const volatile unsigned char *vmclock;
    size_t vmclock_mapped_bytes;    /* for munmap */
    size_t vmclock_readable_bytes;  /* min(mapped, the page's declared size) */
    int saved_errno;
} ffclock_reader;

/* ---- Memory ordering: loads that are single instructions, fences between. */
#if defined(__GNUC__) || defined(__clang__)
#define FFCLOCK_LOAD64(p) __atomic_load_n((const volatile uint64_t *)(p), __ATOMIC_RELAXED)
#define FFCLOCK_LOAD32(p) __atomic_load_n((const volatile uint32_t *)(p), __ATOMIC_RELAXED)
#define FFCLOCK_LOAD64_ACQUIRE(p) __atomic_load_n((const volatile uint64_t *)(p), __ATOMIC_ACQUIRE)
#define FFCLOCK_LOAD32_ACQUIRE(p) __atomic_load_n((const volatile uint32_t *)(p), __ATOMIC_ACQUIRE)
#define FFCLOCK_ACQUIRE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#else
#define FFCLOCK_LOAD64(p) (*(const volatile uint64_t *)(p))
#define FFCLOCK_LOAD32(p) (*(const volatile uint32_t *)(p))
#define FFCLOCK_LOAD64_ACQUIRE(p) (*(const volatile uint64_t *)(p))
#define FFCLOCK_LOAD32_ACQUIRE(p) (*(const volatile uint32_t *)(p))
#define FFCLOCK_ACQUIRE() ((void)0)
#endif

static inline const char *ffclock_strerror(int code) {
    switch (code) {
    case FFCLOCK_OK: return "ok";
    case FFCLOCK_E_OPEN: return "cannot open the published clock file: start 'ntpclient --publish PATH HOST' first, or check the path and its permissions";
    case FFCLOCK_E_MAP: return "cannot map the published clock file (fstat or mmap failed)";
    case FFCLOCK_E_SIZE: return "the file is smaller than a published clock: is it a file written by 'ntpclient --publish'?";
    case FFCLOCK_E_MAGIC: return "no published clock here (bad magic number): is this a file written by 'ntpclient --publish'?";
    case FFCLOCK_E_VERSION: return "published clock layout version differs from this header's (3): use a matching ffclock.h";
    case FFCLOCK_E_COUNTER: return "the published clock counts a counter other than CLOCK_MONOTONIC_RAW: cannot read it";
    case FFCLOCK_E_TORN: return "the writer stopped in the middle of an update; restart it";
    case FFCLOCK_E_CLOCK: return "clock_gettime(CLOCK_MONOTONIC_RAW) failed";
    case FFCLOCK_E_ARGUMENT: return "NULL argument or a reader that is not open";
    default: return "unknown ffclock error";
    }
}

static inline const char *ffclock_verdict_name(int verdict) {
    switch (verdict) {
    case FFCLOCK_VERDICT_OK: return "ok";
    case FFCLOCK_VERDICT_UNSYNC: return "unsync";
    case FFCLOCK_VERDICT_STALE: return "stale";
    case FFCLOCK_VERDICT_STOPPED: return "stopped";
    case FFCLOCK_VERDICT_DISRUPTED: return "disrupted";
    case FFCLOCK_VERDICT_UNUSABLE: return "unusable";
    default: return "?";
    }
}

/* CLOCK_MONOTONIC_RAW in ns: the counter the published parameters are calibrated on. */
static inline int ffclock_counter_now(int64_t *counter_ns) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts) != 0) return FFCLOCK_E_CLOCK;
    *counter_ns = (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
    return FFCLOCK_OK;
}

static inline double ffclock_bits_to_double(uint64_t bits) {
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Maps `path` read-only (whole file); returns the mapping or NULL. */
static inline const volatile unsigned char *ffclock_map_(const char *path, size_t *size, int *saved_errno, int *rc) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { *saved_errno = errno; *rc = FFCLOCK_E_OPEN; return NULL; }
    struct stat info;
    if (fstat(fd, &info) != 0 || info.st_size <= 0) {
        *saved_errno = errno; close(fd); *rc = info.st_size <= 0 ? FFCLOCK_E_SIZE : FFCLOCK_E_MAP; return NULL;
    }
    void *m = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_SHARED, fd, 0);
    *saved_errno = errno;
    close(fd);
    if (m == MAP_FAILED) { *rc = FFCLOCK_E_MAP; return NULL; }
    *size = (size_t)info.st_size;
    *rc = FFCLOCK_OK;
    return (const volatile unsigned char *)m;
}

/* Maps the vmclock page named in the file, when the writer watches one and it is a
 * version-1 vmclock page; otherwise leaves it unmapped (the marker is then not checked). */
static inline void ffclock_open_vmclock_(ffclock_reader *r) {
    char path[FFCLOCK_VMCLOCK_PATH_BYTES];
    const volatile unsigned char *bytes = (const volatile unsigned char *)r->words + FFCLOCK_VMCLOCK_PATH_OFFSET;
    size_t i;
    for (i = 0; i < sizeof path; i++) path[i] = (char)bytes[i];
    path[sizeof path - 1] = 0;
    if (path[0] == 0) return;
    size_t size = 0;
    int saved = 0, rc = 0;
    const volatile unsigned char *page = ffclock_map_(path, &size, &saved, &rc);
    if (page == NULL) return;
    uint32_t magic = (uint32_t)page[0] | (uint32_t)page[1] << 8 | (uint32_t)page[2] << 16 | (uint32_t)page[3] << 24;
    uint16_t version = (uint16_t)(page[8] | page[9] << 8);
    if (size < 24 || magic != FFCLOCK_VMCLOCK_MAGIC || version != FFCLOCK_VMCLOCK_VERSION) {
        munmap((void *)page, size);
        return;
    }
    uint32_t declared = (uint32_t)page[4] | (uint32_t)page[5] << 8 | (uint32_t)page[6] << 16 | (uint32_t)page[7] << 24;
    r->vmclock = page;
    r->vmclock_mapped_bytes = size;
    r->vmclock_readable_bytes = declared < size ? declared : size;
}

/* Opens and checks `path`. On failure returns an error code and leaves `r` closed. */
static inline int ffclock_open(ffclock_reader *r, const char *path) {
    if (r == NULL || path == NULL) return FFCLOCK_E_ARGUMENT;
    memset(r, 0, sizeof *r);
    size_t size = 0;
    int rc = 0;
    const volatile unsigned char *m = ffclock_map_(path, &size, &r->saved_errno, &rc);
    if (m == NULL) return rc;
    r->words = (const volatile uint64_t *)m;
    r->size = size;
    if (size < FFCLOCK_USED_BYTES) rc = FFCLOCK_E_SIZE;
    else if (FFCLOCK_LOAD64(&r->words[FFCLOCK_WORD_MAGIC]) != FFCLOCK_MAGIC) rc = FFCLOCK_E_MAGIC;
    else if (FFCLOCK_LOAD64(&r->words[FFCLOCK_WORD_VERSION]) != FFCLOCK_LAYOUT_VERSION) rc = FFCLOCK_E_VERSION;
    else if (FFCLOCK_LOAD64(&r->words[FFCLOCK_WORD_CLOCK]) != FFCLOCK_COUNTER_MONOTONIC_RAW) rc = FFCLOCK_E_COUNTER;
    if (rc != FFCLOCK_OK) {
        munmap((void *)r->words, size);
        r->words = NULL;
        return rc;
    }
    ffclock_open_vmclock_(r);
    return FFCLOCK_OK;
}

static inline void ffclock_close(ffclock_reader *r) {
    if (r == NULL) return;
    if (r->words) munmap((void *)r->words, r->size);
    if (r->vmclock) munmap((void *)r->vmclock, r->vmclock_mapped_bytes);
    r->words = NULL;
    r->vmclock = NULL;
}

/* One consistent snapshot under the sequence lock (docs/published-clock.md, "Sequence lock"). */
static inline int ffclock_snapshot(const ffclock_reader *r, ffclock_parameters *p, int *retries) {
    if (r == NULL || r->words == NULL || p == NULL) return FFCLOCK_E_ARGUMENT;
    const volatile uint64_t *w = r->words;
    int64_t deadline = 0, now = 0;
    int attempts = 0;
    for (;;) {
        uint64_t before = FFCLOCK_LOAD64_ACQUIRE(&w[FFCLOCK_WORD_SEQUENCE]);
        if ((before & 1) == 0) {
            const volatile uint64_t *f = w + FFCLOCK_WORD_FIELDS;
            p->counter_origin = (int64_t)FFCLOCK_LOAD64(&f[0]);
            p->time_at_origin_ns = (int64_t)FFCLOCK_LOAD64(&f[1]);
            p->time_at_origin_fraction = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[2]));
            p->period = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[3]));
            p->period_error = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[4]));
            p->period_error_bound = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[5]));
            p->local_period = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[6]));
            p->offset_ns = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[7]));
            p->error_estimate_ns = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[8]));
            p->max_error_ns = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[9]));
            p->max_error_growth_rate = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[10]));
            p->last_stamp_counter = (int64_t)FFCLOCK_LOAD64(&f[11]);
            p->next_stamp_expected_counter = (int64_t)FFCLOCK_LOAD64(&f[12]);
            p->leap = (uint8_t)FFCLOCK_LOAD64(&f[13]);
            p->status = (uint32_t)FFCLOCK_LOAD64(&f[14]);
            p->last_rtt_ns = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[15]));
            p->minimum_rtt_ns = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[16]));
            p->naive_offset_ns = ffclock_bits_to_double(FFCLOCK_LOAD64(&f[17]));
            p->stamp_count = (int64_t)FFCLOCK_LOAD64(&f[18]);
            p->writer_flags = FFCLOCK_LOAD64(&w[FFCLOCK_WORD_WRITER_FLAGS]);
            p->disruption_marker = FFCLOCK_LOAD64(&w[FFCLOCK_WORD_DISRUPTION_MARKER]);
            p->generation = FFCLOCK_LOAD64(&w[FFCLOCK_WORD_GENERATION]);
            p->stale_grace_ns = (int64_t)FFCLOCK_LOAD64(&w[FFCLOCK_WORD_STALE_GRACE]);
            FFCLOCK_ACQUIRE();
            if (FFCLOCK_LOAD64(&w[FFCLOCK_WORD_SEQUENCE]) == before) {
                p->sequence = before;
                if (retries) *retries = attempts;
                return FFCLOCK_OK;
            }
        }
        attempts++;
        if (attempts % 1000 == 0) {
            if (ffclock_counter_now(&now) != FFCLOCK_OK) return FFCLOCK_E_CLOCK;
            if (deadline == 0) deadline = now + 1000000000;
            else if (now > deadline) return FFCLOCK_E_TORN;
        }
    }
}

/* The live vmclock markers under the page's own sequence lock; 0 when none could be read. */
static inline int ffclock_vmclock_marker_(const ffclock_reader *r, uint64_t *marker, uint64_t *generation) {
    if (r->vmclock == NULL) return 0;
    const volatile unsigned char *page = r->vmclock;
    size_t readable = r->vmclock_readable_bytes;
    int attempt;
    for (attempt = 0; attempt < 1000; attempt++) {
        uint32_t before = FFCLOCK_LOAD32_ACQUIRE(page + 12);
        if (before & 1) continue;
        uint64_t m = FFCLOCK_LOAD64(page + 16);
        uint64_t flags = FFCLOCK_LOAD64(page + 24);
        uint64_t g = (readable >= 112 && (flags & FFCLOCK_VMCLOCK_GENERATION_PRESENT)) ? FFCLOCK_LOAD64(page + 104) : 0;
        FFCLOCK_ACQUIRE();
        if (FFCLOCK_LOAD32(page + 12) == before) {
            *marker = m;
            *generation = g;
            return 1;
        }
    }
    return 0;
}

/* Ca(counter) in whole Unix ns (docs/published-clock.md, "Reading"). */
static inline int64_t ffclock_absolute_time(const ffclock_parameters *p, int64_t counter) {
    double elapsed = (p->local_period * 1e9) * (double)(counter - p->counter_origin) + p->time_at_origin_fraction;
    return p->time_at_origin_ns + (int64_t)floor(elapsed);
}

/* The hard bound aged to `counter`. */
static inline double ffclock_max_error(const ffclock_parameters *p, int64_t counter) {
    double elapsed = (p->period * 1e9) * (double)(counter - p->last_stamp_counter);
    if (elapsed < 0) elapsed = 0;
    return p->max_error_ns + p->max_error_growth_rate * elapsed;
}

/* Freshness with the stale grace applied: evaluated at counter - grace. */
static inline int ffclock_freshness(const ffclock_parameters *p, int64_t counter) {
    if (p->status & FFCLOCK_STATUS_NO_ESTIMATE) return FFCLOCK_UNUSABLE;
    int64_t shifted = counter - (p->stale_grace_ns > 0 ? p->stale_grace_ns : 0);
    if (shifted <= p->next_stamp_expected_counter) return FFCLOCK_FRESH;
    double late = (p->period * 1e9) * (double)(shifted - p->next_stamp_expected_counter);
    return late > 1024e9 ? FFCLOCK_UNUSABLE : FFCLOCK_STALE;
}

/* Cd: the interval between two counter reads, ns, on the published period (for intervals
 * below 1024 s; above that subtract two ffclock_read times). */
static inline int ffclock_difference(const ffclock_time *t, int64_t from_counter, int64_t to_counter, double *interval_ns) {
    if (t == NULL || interval_ns == NULL) return FFCLOCK_E_ARGUMENT;
    *interval_ns = (t->params.period * 1e9) * (double)(to_counter - from_counter);
    return FFCLOCK_OK;
}

/* Reads the parameters, the live vmclock marker, then the counter; fills `t`. */
static inline int ffclock_read(const ffclock_reader *r, ffclock_time *t) {
    if (r == NULL || t == NULL) return FFCLOCK_E_ARGUMENT;
    memset(t, 0, sizeof *t);
    int rc = ffclock_snapshot(r, &t->params, &t->retries);
    if (rc != FFCLOCK_OK) return rc;
    const ffclock_parameters *p = &t->params;
    t->marker_checked = ffclock_vmclock_marker_(r, &t->live_disruption_marker, &t->live_generation);
    rc = ffclock_counter_now(&t->counter_ns);
    if (rc != FFCLOCK_OK) return rc;
    int64_t counter = t->counter_ns;
    int disrupted = (p->writer_flags & FFCLOCK_WRITER_VMCLOCK) && t->marker_checked
        && (t->live_disruption_marker != p->disruption_marker || t->live_generation != p->generation);
    t->time_ns = ffclock_absolute_time(p, counter);
    t->max_error_ns = disrupted ? INFINITY : ffclock_max_error(p, counter);
    t->freshness = ffclock_freshness(p, counter);
    t->status = p->status;
    int64_t poll = p->next_stamp_expected_counter - p->last_stamp_counter;
    if (poll > 0 && counter - p->last_stamp_counter > 10 * poll) t->status |= FFCLOCK_STATUS_STARVING;
    if (t->status & FFCLOCK_STATUS_NO_ESTIMATE) t->verdict = FFCLOCK_VERDICT_UNUSABLE;
    else if (disrupted) t->verdict = FFCLOCK_VERDICT_DISRUPTED;
    else if (p->writer_flags & FFCLOCK_WRITER_STOPPED) t->verdict = FFCLOCK_VERDICT_STOPPED;
    else if (t->freshness == FFCLOCK_UNUSABLE) t->verdict = FFCLOCK_VERDICT_UNUSABLE;
    else if (t->freshness == FFCLOCK_STALE) t->verdict = FFCLOCK_VERDICT_STALE;
    else if (t->status & FFCLOCK_STATUS_UNSYNC) t->verdict = FFCLOCK_VERDICT_UNSYNC;
    else t->verdict = FFCLOCK_VERDICT_OK;
    return FFCLOCK_OK;
}

#ifdef __cplusplus
}
#endif
#endif /* FFCLOCK_H */
