#define _GNU_SOURCE 1
#include "ck_timing.h"
#include <poll.h>
#include <sys/prctl.h>
#include <time.h>

int ck_set_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

long ck_get_timer_slack(void) {
    return (long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
}

int ck_ppoll_nanoseconds(struct pollfd *fds, unsigned long count, int64_t timeout_nanoseconds) {
    if (timeout_nanoseconds < 0) return ppoll(fds, (nfds_t)count, NULL, NULL);
    struct timespec timeout = { .tv_sec = (time_t)(timeout_nanoseconds / 1000000000),
                                .tv_nsec = (long)(timeout_nanoseconds % 1000000000) };
    return ppoll(fds, (nfds_t)count, &timeout, NULL);
}

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>

// struct sched_attr, first version (SCHED_ATTR_SIZE_VER0 = 48 bytes), linux/sched/types.h.
struct ck_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};
_Static_assert(sizeof(struct ck_sched_attr) == 48, "sched_attr VER0");

int ck_request_scheduler_slice(uint64_t slice_nanoseconds) {
    if (sched_getscheduler(0) != SCHED_OTHER) return 1;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);  // per thread on Linux (who 0: the caller)
    if (nice == -1 && errno != 0) return -1;
    struct ck_sched_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.sched_policy = SCHED_OTHER;
    attr.sched_nice = nice;
    attr.sched_runtime = slice_nanoseconds;
    return (int)syscall(SYS_sched_setattr, 0, &attr, 0) == 0 ? 0 : -1;
}
