// Precise waiting for the lab's relay: the timer slack (prctl is variadic, which Swift
// cannot call) and ppoll(2) (declared only under _GNU_SOURCE, which this header must not
// define; see CKernelStamps.h).
#pragma once
#include <stdint.h>
#include <poll.h>

/// prctl(PR_SET_TIMERSLACK, nanoseconds) for the calling thread. Returns 0 or -1 with errno.
int ck_set_timer_slack(unsigned long nanoseconds);
/// prctl(PR_GET_TIMERSLACK) for the calling thread, or -1 with errno.
long ck_get_timer_slack(void);
/// ppoll(2) with a relative timeout in nanoseconds; negative waits without limit. Signals
/// are left as they are (NULL mask). Returns the ready count, 0 on timeout, -1 with errno.
int ck_ppoll_nanoseconds(struct pollfd *fds, unsigned long count, int64_t timeout_nanoseconds);
/// For a SCHED_OTHER calling thread: asks the scheduler (EEVDF, Linux 6.12 and later) for a
/// time slice of `slice_nanoseconds` through sched_setattr(2)'s sched_runtime, keeping the
/// thread's nice value. A shorter slice gives the thread an earlier deadline, so when it
/// wakes it preempts a CPU-bound task at once instead of waiting out that task's slice. No
/// privilege needed. Returns 0 when set, 1 when the thread is not SCHED_OTHER (left alone),
/// -1 with errno (e.g. EINVAL on an older kernel, which ignores nothing silently).
int ck_request_scheduler_slice(uint64_t slice_nanoseconds);
