/*
 * ffclock_now: prints the time the published clock tells, one JSON object per line, with the
 * same keys as 'ntpclient now --json'. An example of include/ffclock.h and the program the
 * reader-agreement tests compile with the system cc:
 *
 *     cc -std=c99 -O2 -I include -o ffclock_now contrib/c/ffclock_now.c -lm
 *     ./ffclock_now /run/ffclock [COUNT]
 *
 * Exit status: 0 when the last read's verdict is ok or unsync, 1 otherwise or on an error
 * (one line on stderr saying what happened), 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include "ffclock.h"

static const char *freshness_name(int freshness) {
    return freshness == FFCLOCK_FRESH ? "fresh" : freshness == FFCLOCK_STALE ? "stale" : "unusable";
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: ffclock_now PATH [COUNT]\n");
        return 2;
    }
    long count = argc == 3 ? strtol(argv[2], NULL, 10) : 1;
    if (count < 1) {
        fprintf(stderr, "ffclock_now: COUNT must be a positive integer\n");
        return 2;
    }
    ffclock_reader reader;
    int rc = ffclock_open(&reader, argv[1]);
    if (rc != FFCLOCK_OK) {
        fprintf(stderr, "ffclock_now: %s: %s\n", argv[1], ffclock_strerror(rc));
        return 1;
    }
    int verdict = FFCLOCK_VERDICT_UNUSABLE;
    long i;
    for (i = 0; i < count; i++) {
        ffclock_time t;
        rc = ffclock_read(&reader, &t);
        if (rc != FFCLOCK_OK) {
            fprintf(stderr, "ffclock_now: %s: %s\n", argv[1], ffclock_strerror(rc));
            ffclock_close(&reader);
            return 1;
        }
        verdict = t.verdict;
        /* Cd over one second of counter: what an interval measurement between two reads uses. */
        double second_ns = 0;
        ffclock_difference(&t, t.counter_ns, t.counter_ns + 1000000000, &second_ns);
        char bound[64], published[64];
        if (isinf(t.max_error_ns)) snprintf(bound, sizeof bound, "null");
        else snprintf(bound, sizeof bound, "%.17g", t.max_error_ns);
        if (isinf(t.params.max_error_ns)) snprintf(published, sizeof published, "null");
        else snprintf(published, sizeof published, "%.17g", t.params.max_error_ns);
        printf("{\"timeUnixNanoseconds\":%lld,\"maxErrorNanoseconds\":%s,\"verdict\":\"%s\",\"freshness\":\"%s\","
               "\"statusBits\":%u,\"counterNanoseconds\":%lld,\"counterOriginNanoseconds\":%lld,"
               "\"timeAtOriginNanoseconds\":%lld,\"periodSecondsPerTick\":%.17g,\"localPeriodSecondsPerTick\":%.17g,"
               "\"publishedMaxErrorNanoseconds\":%s,\"lastStampCounterNanoseconds\":%lld,"
               "\"nextStampExpectedCounterNanoseconds\":%lld,\"stampCount\":%lld,\"leap\":%u,"
               "\"writerFlags\":%llu,\"disruptionMarker\":%llu,\"generation\":%llu,\"staleGraceNanoseconds\":%lld,"
               "\"markerChecked\":%s,\"retries\":%d,\"differenceNanosecondsOver1e9Ticks\":%.17g}\n",
               (long long)t.time_ns, bound, ffclock_verdict_name(t.verdict), freshness_name(t.freshness),
               t.status, (long long)t.counter_ns, (long long)t.params.counter_origin,
               (long long)t.params.time_at_origin_ns, t.params.period, t.params.local_period,
               published, (long long)t.params.last_stamp_counter,
               (long long)t.params.next_stamp_expected_counter, (long long)t.params.stamp_count,
               (unsigned)t.params.leap, (unsigned long long)t.params.writer_flags,
               (unsigned long long)t.params.disruption_marker, (unsigned long long)t.params.generation,
               (long long)t.params.stale_grace_ns, t.marker_checked ? "true" : "false", t.retries, second_ns);
    }
    ffclock_close(&reader);
    return verdict == FFCLOCK_VERDICT_OK || verdict == FFCLOCK_VERDICT_UNSYNC ? 0 : 1;
}
