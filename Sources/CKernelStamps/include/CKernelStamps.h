// C shim for KernelStamps: the declarations Swift's Glibc module does not import
// (mmsghdr/recvmmsg/sendmmsg need _GNU_SOURCE; CMSG_* are macros; linux/net_tstamp.h
// constants; adjtimex, signalfd, eventfd). Everything here is tiny and is checked
// against the real system headers by static assertions in shim.c.
#pragma once
// No _GNU_SOURCE here: defining it in a header that Swift imports next to Glibc makes
// clang see two different fd_set definitions. The shim declares its own mmsghdr (same layout,
// asserted in shim.c, which is compiled with _GNU_SOURCE) instead.
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include "ck_timing.h"

// ---- Batched I/O (recvmmsg/sendmmsg). Same layout as glibc's struct mmsghdr (asserted in shim.c).
typedef struct ck_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
} ck_mmsghdr;

/// recvmmsg(2) with no timeout. Returns the count, or -1 with errno set.
int ck_recvmmsg(int fd, ck_mmsghdr *vec, unsigned int vlen, int flags);
/// sendmmsg(2). Returns the count sent, or -1 with errno set.
int ck_sendmmsg(int fd, ck_mmsghdr *vec, unsigned int vlen, int flags);

// ---- Control messages.
static inline struct cmsghdr *ck_cmsg_firsthdr(struct msghdr *msg) { return CMSG_FIRSTHDR(msg); }
static inline struct cmsghdr *ck_cmsg_nxthdr(struct msghdr *msg, struct cmsghdr *c) { return CMSG_NXTHDR(msg, c); }
static inline unsigned char *ck_cmsg_data(struct cmsghdr *c) { return CMSG_DATA(c); }
static inline size_t ck_cmsg_space(size_t len) { return CMSG_SPACE(len); }
static inline size_t ck_cmsg_len(size_t len) { return CMSG_LEN(len); }

// ---- Timestamping constants (linux/net_tstamp.h, linux/errqueue.h, asm/socket.h), x86-64/aarch64
// values where time_t is 64-bit so the *_OLD numbers carry 64-bit timespecs.
enum {
    CK_SO_TIMESTAMPNS = 35,
    CK_SCM_TIMESTAMPNS = 35,
    CK_SO_TIMESTAMPING = 37,
    CK_SCM_TIMESTAMPING = 37,
    CK_SOF_TIMESTAMPING_TX_HARDWARE = 1 << 0,
    CK_SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1,
    CK_SOF_TIMESTAMPING_RX_HARDWARE = 1 << 2,
    CK_SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3,
    CK_SOF_TIMESTAMPING_SOFTWARE = 1 << 4,
    CK_SOF_TIMESTAMPING_OPT_ID = 1 << 7,
    CK_SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11,
    CK_SO_EE_ORIGIN_TIMESTAMPING = 4,
    CK_SCM_TSTAMP_SND = 0,
    CK_SOL_IP = 0,
    CK_IP_RECVERR = 11,
    CK_SOL_IPV6 = 41,
    CK_IPV6_RECVERR = 25,
    CK_MSG_ERRQUEUE = 0x2000,
};

// ---- Address steering for an SO_REUSEPORT group: a classic BPF program (linux/filter.h).
enum {
    CK_SO_ATTACH_REUSEPORT_CBPF = 51,
    CK_BPF_LD_W_ABS = 0x20,   // BPF_LD | BPF_W | BPF_ABS
    CK_BPF_ALU_MUL_K = 0x24,  // BPF_ALU | BPF_MUL | BPF_K
    CK_BPF_ALU_RSH_K = 0x74,  // BPF_ALU | BPF_RSH | BPF_K
    CK_BPF_ALU_MOD_K = 0x94,  // BPF_ALU | BPF_MOD | BPF_K
    CK_BPF_RET_A = 0x16,      // BPF_RET | BPF_A
    CK_SKF_NET_OFF = -0x100000,
};

/// struct sock_extended_err (linux/errqueue.h): ee_data carries the OPT_ID key.
typedef struct ck_sock_extended_err {
    uint32_t ee_errno;
    uint8_t ee_origin;
    uint8_t ee_type;
    uint8_t ee_code;
    uint8_t ee_pad;
    uint32_t ee_info;
    uint32_t ee_data;
} ck_sock_extended_err;

/// struct scm_timestamping: ts[0] software, ts[2] hardware.
typedef struct ck_scm_timestamping {
    struct timespec ts[3];
} ck_scm_timestamping;

// ---- Host clock state, read-only: adjtimex with modes = 0.
typedef struct ck_clock_state {
    int state;            // return value: TIME_OK=0 TIME_INS=1 TIME_DEL=2 TIME_OOP=3 TIME_WAIT=4 TIME_ERROR=5
    int status;           // STA_* bits
    long maxerror_us;
    long esterror_us;
    long freq_scaled_ppm; // ppm with 16-bit fraction
    long offset;          // ns if STA_NANO, else us
    long tick_us;
    int tai;
} ck_clock_state;

/// Calls adjtimex(2) with modes = 0 (never modifies the clock). Returns 0 or -1 with errno.
int ck_read_clock_state(ck_clock_state *out);

enum {
    CK_STA_UNSYNC = 0x0040,
    CK_STA_NANO = 0x2000,
    CK_STA_INS = 0x0010,
    CK_STA_DEL = 0x0020,
};

// ---- Signals: block the given signals in the calling thread (threads created afterwards
// inherit the mask) and open a signalfd for them. Returns the fd or -1 with errno.
// The previous mask is saved into *old_mask_out (a sigset_t-sized buffer, 128 bytes).
int ck_signalfd_block(const int *signals, int count, void *old_mask_out);
/// Restores a mask saved by ck_signalfd_block. Returns 0 or an errno.
int ck_restore_sigmask(const void *old_mask);
/// Reads one pending signal from a signalfd. Returns the signal number, 0 if none
/// (non-blocking fd), or -1 with errno.
int ck_signalfd_read(int fd);
/// Sends a signal to the calling thread only (pthread_kill(pthread_self())).
int ck_raise_in_this_thread(int sig);

// ---- Wake-up: eventfd (non-blocking, close-on-exec).
int ck_eventfd(void);
int ck_eventfd_signal(int fd);
/// Drains the counter. Returns 1 if it was signalled, 0 if not, -1 with errno.
int ck_eventfd_drain(int fd);

// ---- Threads: the GNU extensions Swift's Glibc module does not import.
/// pthread_setname_np for the calling thread; the kernel keeps 15 bytes. Returns 0 or an errno.
int ck_name_this_thread(const char *name);
/// sched_setaffinity for the calling thread: only `cpu`. Returns 0 or -1 with errno.
int ck_pin_this_thread(int cpu);
