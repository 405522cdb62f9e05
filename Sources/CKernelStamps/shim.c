#define _GNU_SOURCE 1
#include "CKernelStamps.h"
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/timex.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <linux/net_tstamp.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <linux/filter.h>

// The shim's copies must match the system's definitions.
_Static_assert(sizeof(struct mmsghdr) == sizeof(ck_mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct mmsghdr, msg_len) == offsetof(ck_mmsghdr, msg_len), "mmsghdr layout");
_Static_assert(SO_TIMESTAMPNS == CK_SO_TIMESTAMPNS, "SO_TIMESTAMPNS");
_Static_assert(SCM_TIMESTAMPNS == CK_SCM_TIMESTAMPNS, "SCM_TIMESTAMPNS");
_Static_assert(SO_TIMESTAMPING == CK_SO_TIMESTAMPING, "SO_TIMESTAMPING");
_Static_assert(SCM_TIMESTAMPING == CK_SCM_TIMESTAMPING, "SCM_TIMESTAMPING");
_Static_assert(SOF_TIMESTAMPING_TX_SOFTWARE == CK_SOF_TIMESTAMPING_TX_SOFTWARE, "flags");
_Static_assert(SOF_TIMESTAMPING_RX_SOFTWARE == CK_SOF_TIMESTAMPING_RX_SOFTWARE, "flags");
_Static_assert(SOF_TIMESTAMPING_SOFTWARE == CK_SOF_TIMESTAMPING_SOFTWARE, "flags");
_Static_assert(SOF_TIMESTAMPING_OPT_ID == CK_SOF_TIMESTAMPING_OPT_ID, "flags");
_Static_assert(SOF_TIMESTAMPING_OPT_TSONLY == CK_SOF_TIMESTAMPING_OPT_TSONLY, "flags");
_Static_assert(SO_EE_ORIGIN_TIMESTAMPING == CK_SO_EE_ORIGIN_TIMESTAMPING, "origin");
_Static_assert(SCM_TSTAMP_SND == CK_SCM_TSTAMP_SND, "tstamp type");
_Static_assert(sizeof(struct sock_extended_err) == sizeof(ck_sock_extended_err), "sock_extended_err");
_Static_assert(offsetof(struct sock_extended_err, ee_data) == offsetof(ck_sock_extended_err, ee_data), "ee_data");
_Static_assert(SO_ATTACH_REUSEPORT_CBPF == CK_SO_ATTACH_REUSEPORT_CBPF, "SO_ATTACH_REUSEPORT_CBPF");
_Static_assert((BPF_LD | BPF_W | BPF_ABS) == CK_BPF_LD_W_ABS, "BPF opcode");
_Static_assert((BPF_ALU | BPF_MUL | BPF_K) == CK_BPF_ALU_MUL_K, "BPF opcode");
_Static_assert((BPF_ALU | BPF_RSH | BPF_K) == CK_BPF_ALU_RSH_K, "BPF opcode");
_Static_assert((BPF_ALU | BPF_MOD | BPF_K) == CK_BPF_ALU_MOD_K, "BPF opcode");
_Static_assert((BPF_RET | BPF_A) == CK_BPF_RET_A, "BPF opcode");
_Static_assert(SKF_NET_OFF == CK_SKF_NET_OFF, "SKF_NET_OFF");
_Static_assert(sizeof(struct sock_filter) == 8, "sock_filter");
_Static_assert(IP_RECVERR == CK_IP_RECVERR && IPV6_RECVERR == CK_IPV6_RECVERR, "recverr");
_Static_assert(SOL_IP == CK_SOL_IP && SOL_IPV6 == CK_SOL_IPV6, "levels");
_Static_assert(MSG_ERRQUEUE == CK_MSG_ERRQUEUE, "MSG_ERRQUEUE");
_Static_assert(STA_UNSYNC == CK_STA_UNSYNC && STA_NANO == CK_STA_NANO, "STA");
_Static_assert(STA_INS == CK_STA_INS && STA_DEL == CK_STA_DEL, "STA");
_Static_assert(sizeof(sigset_t) <= 128, "sigset_t fits the caller's buffer");

int ck_recvmmsg(int fd, ck_mmsghdr *vec, unsigned int vlen, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)vec, vlen, flags, NULL);
}

int ck_sendmmsg(int fd, ck_mmsghdr *vec, unsigned int vlen, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)vec, vlen, flags);
}

int ck_read_clock_state(ck_clock_state *out) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = 0; // read-only: never change the clock
    int state = adjtimex(&tx);
    if (state < 0) return -1;
    out->state = state;
    out->status = tx.status;
    out->maxerror_us = tx.maxerror;
    out->esterror_us = tx.esterror;
    out->freq_scaled_ppm = tx.freq;
    out->offset = tx.offset;
    out->tick_us = tx.tick;
    out->tai = tx.tai;
    return 0;
}

int ck_signalfd_block(const int *signals, int count, void *old_mask_out) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    int err = pthread_sigmask(SIG_BLOCK, &set, (sigset_t *)old_mask_out);
    if (err != 0) { errno = err; return -1; }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, (sigset_t *)old_mask_out, NULL);
        errno = saved;
    }
    return fd;
}

int ck_restore_sigmask(const void *old_mask) {
    return pthread_sigmask(SIG_SETMASK, (const sigset_t *)old_mask, NULL);
}

int ck_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = read(fd, &info, sizeof info);
        if (n == (ssize_t)sizeof info) return (int)info.ssi_signo;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n >= 0) errno = EIO;
        return -1;
    }
}

int ck_raise_in_this_thread(int sig) {
    return pthread_kill(pthread_self(), sig);
}

int ck_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int ck_eventfd_signal(int fd) {
    uint64_t one = 1;
    for (;;) {
        ssize_t n = write(fd, &one, sizeof one);
        if (n == (ssize_t)sizeof one) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0; // counter saturated: already signalled
        return -1;
    }
}

int ck_eventfd_drain(int fd) {
    uint64_t value = 0;
    for (;;) {
        ssize_t n = read(fd, &value, sizeof value);
        if (n == (ssize_t)sizeof value) return 1;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        return -1;
    }
}

int ck_name_this_thread(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    return pthread_setname_np(pthread_self(), truncated);
}

int ck_pin_this_thread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) { errno = EINVAL; return -1; }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}
