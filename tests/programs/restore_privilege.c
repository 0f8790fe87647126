/* Restore test: privilege state, per thread. Run as root.
 *   usage: restore_privilege GOFILE WORKDIR [plain|notif|no-sigreturn|late-failure]
 *
 * "no-sigreturn" adds a filter that refuses rt_sigreturn (the program has
 * no signal handler, so it never needs it): restore must refuse that image,
 * the restorer's last call in each thread is rt_sigreturn.
 *
 * "late-failure" leaves a process-wide real-time signal queued with
 * RLIMIT_SIGPENDING at 0, so that the restorer's leader cannot queue it
 * again and the restore fails late; the second thread spins incrementing
 * a counter in a MAP_SHARED mapping of WORKDIR/counter, so any instruction
 * of it that runs after the dump shows in that file: none may.
 * "notif" adds a filter that hands getppid() to a user-space listener
 * (SECCOMP_RET_USER_NOTIF; the listener fd is closed again): restore must
 * refuse that image.
 * Without "plain", the main thread drops CAP_SYS_ADMIN from its bounding,
 * permitted and effective sets, puts CAP_NET_BIND_SERVICE into its
 * inheritable and ambient sets, sets SECBIT_KEEP_CAPS and SECBIT_NOROOT,
 * sets no_new_privs and installs two seccomp filters; a second thread then
 * drops CAP_NET_RAW from its own effective set and installs a third filter
 * of its own (credentials and filters are per thread), and a third thread
 * enters seccomp strict mode and waits in read() on a pipe: after the
 * restore it must still be strict, and still able to read, write and exit.
 *
 * Either way, each thread's capability, no_new_privs, seccomp and signal
 * lines of /proc/self/task/TID/status are recorded before the dump and
 * must read the same after the restore; and the filters must still act:
 * getppid() fails with errno 78 in the main thread (the newer of its two
 * filters wins over the older one's 77) and 79 in the second thread. */
#include "rt_prog.h"

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define NKEYS 11
static const char *const kKeys[NKEYS] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
                                        "Seccomp", "Seccomp_filters", "SigIgn", "SigCgt", "SigBlk"};

struct status_lines {
  char line[NKEYS][256];
};

static void read_status(pid_t tid, struct status_lines *out) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  FILE *f = fopen(path, "r");
  if (!f) rt_die("open %s", path);
  memset(out, 0, sizeof *out);
  while (fgets(buf, sizeof buf, f))
    for (int k = 0; k < NKEYS; k++) {
      size_t n = strlen(kKeys[k]);
      if (strncmp(buf, kKeys[k], n) == 0 && buf[n] == ':') snprintf(out->line[k], sizeof out->line[k], "%s", buf);
    }
  fclose(f);
}

static void compare_status(const char *who, pid_t tid, const struct status_lines *before) {
  struct status_lines now;
  read_status(tid, &now);
  for (int k = 0; k < NKEYS; k++) {
    RT_CHECK(before->line[k][0], "%s: no %s line before the dump", who, kKeys[k]);
    RT_CHECK(strcmp(before->line[k], now.line[k]) == 0, "%s: %s was \"%.*s\", now \"%.*s\"", who, kKeys[k],
             (int)strcspn(before->line[k], "\n"), before->line[k], (int)strcspn(now.line[k], "\n"), now.line[k]);
  }
}

/* getppid() returns -1 with errno `err` (the whole filter: x86-64 only),
 * or goes to a listener when err is 0. */
static void install_filter_for(long nr, int err, unsigned flags);
static void install_filter(int err, unsigned flags) { install_filter_for(SYS_getppid, err, flags); }
static void install_filter_for(long nr, int err, unsigned flags) {
  struct sock_filter insns[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, err ? SECCOMP_RET_ERRNO | (unsigned)err : SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof insns / sizeof insns[0], insns};
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (r < 0) rt_die("seccomp");
  if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) close((int)r);
}

static void expect_getppid_errno(const char *who, int err) {
  errno = 0;
  long r = syscall(SYS_getppid);
  RT_CHECK(r == -1 && errno == err, "%s: getppid() = %ld, errno %d; expected -1, errno %d", who, r, errno, err);
}

/* capset of this thread only (the syscall is per thread). */
static void thread_caps(int drop_eff, int drop_all, int add_inh) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) != 0) rt_die("capget");
  if (drop_eff >= 0) data[drop_eff / 32].effective &= ~(1u << (drop_eff % 32));
  if (drop_all >= 0) {
    data[drop_all / 32].effective &= ~(1u << (drop_all % 32));
    data[drop_all / 32].permitted &= ~(1u << (drop_all % 32));
  }
  if (add_inh >= 0) data[add_inh / 32].inheritable |= 1u << (add_inh % 32);
  if (syscall(SYS_capset, &hdr, data) != 0) rt_die("capset");
}

static int plain, notif, no_sigreturn, late_failure;
static int to_strict[2], from_strict[2];

/* In strict mode only read, write, _exit and rt_sigreturn are allowed: no
 * libc beyond those (pthread_exit would call more, so the thread ends with
 * a raw exit). */
static void *strict_thread(void *arg) {
  (void)arg;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0) rt_die("PR_SET_SECCOMP");
  char c = 's';
  if (write(from_strict[1], &c, 1) != 1) syscall(SYS_exit, 1);
  if (read(to_strict[0], &c, 1) != 1) syscall(SYS_exit, 1);
  c = (char)(c + 1);
  if (write(from_strict[1], &c, 1) != 1) syscall(SYS_exit, 1);
  if (read(to_strict[0], &c, 1) != 1) syscall(SYS_exit, 1);
  syscall(SYS_exit, 0);
  return NULL;
}
static const char *work_dir;
static struct status_lines thread_before;
static pid_t thread_tid;
static int thread_set_up, thread_go;
static const char *go_path;

static void *second_thread(void *arg) {
  (void)arg;
  thread_tid = (pid_t)syscall(SYS_gettid);
  if (late_failure) {
    char path[4096];
    snprintf(path, sizeof path, "%s/counter", work_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) rt_die("%s", path);
    volatile unsigned long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (counter == MAP_FAILED) rt_die("mmap");
    close(fd);
    __atomic_store_n(&thread_set_up, 1, __ATOMIC_SEQ_CST);
    for (;;) (*counter)++;
  }
  if (!plain) {
    thread_caps(CAP_NET_RAW, -1, -1);
    install_filter(79, 0);
  }
  read_status(thread_tid, &thread_before);
  int bits = prctl(PR_GET_SECUREBITS);
  __atomic_store_n(&thread_set_up, 1, __ATOMIC_SEQ_CST);
  while (!__atomic_load_n(&thread_go, __ATOMIC_SEQ_CST)) rt_sleep_ms(5);
  compare_status("second thread", thread_tid, &thread_before);
  RT_CHECK(prctl(PR_GET_SECUREBITS) == bits, "second thread: securebits 0x%x, were 0x%x", prctl(PR_GET_SECUREBITS), bits);
  if (!plain) expect_getppid_errno("second thread", 79);
  return NULL;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  go_path = argv[1];
  plain = argc > 3 && strcmp(argv[3], "plain") == 0;
  notif = argc > 3 && strcmp(argv[3], "notif") == 0;
  no_sigreturn = argc > 3 && strcmp(argv[3], "no-sigreturn") == 0;
  late_failure = argc > 3 && strcmp(argv[3], "late-failure") == 0;
  plain |= late_failure;
  work_dir = argv[2];
  if (late_failure) {
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &rt, NULL);
    union sigval value = {.sival_int = 42};
    if (sigqueue(getpid(), SIGRTMIN, value) != 0) rt_die("sigqueue");
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_SIGPENDING, &none) != 0) rt_die("setrlimit");
  }
  /* A disposition and a mask of our own, to tell them from imgtool's. */
  signal(SIGUSR2, SIG_IGN);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL);
  /* The strict thread first: strict mode cannot follow filter mode. */
  pid_t strict_tid = 0;
  if (!plain) {
    if (pipe(to_strict) != 0 || pipe(from_strict) != 0) rt_die("pipe");
    pthread_t strict;
    if (pthread_create(&strict, NULL, strict_thread, NULL) != 0) rt_die("pthread_create");
    char c;
    if (read(from_strict[0], &c, 1) != 1) rt_die("strict thread");
    /* Its tid: the thread of ours that is in strict mode. */
    DIR *dir = opendir("/proc/self/task");
    if (!dir) rt_die("opendir /proc/self/task");
    for (struct dirent *e; (e = readdir(dir)) != NULL && !strict_tid;) {
      char path[300], buf[256];
      if (e->d_name[0] == '.') continue;
      snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
      FILE *f = fopen(path, "r");
      if (!f) continue;
      while (fgets(buf, sizeof buf, f))
        if (strcmp(buf, "Seccomp:\t1\n") == 0) strict_tid = (pid_t)atoi(e->d_name);
      fclose(f);
    }
    closedir(dir);
    if (!strict_tid) rt_die("no strict-mode thread in /proc/self/task");
  }
  if (!plain) {
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0) rt_die("PR_CAPBSET_DROP");
    thread_caps(-1, CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) != 0) rt_die("PR_CAP_AMBIENT_RAISE");
    /* SECBIT_NOROOT | SECBIT_KEEP_CAPS (linux/securebits.h). */
    if (prctl(PR_SET_SECUREBITS, (1 << 0) | (1 << 4), 0, 0, 0) != 0) rt_die("PR_SET_SECUREBITS");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) rt_die("PR_SET_NO_NEW_PRIVS");
    install_filter(77, 0);
    install_filter(78, SECCOMP_FILTER_FLAG_LOG);
    if (notif) install_filter(0, SECCOMP_FILTER_FLAG_NEW_LISTENER);
    if (no_sigreturn) install_filter_for(SYS_rt_sigreturn, EPERM, 0);
  }
  pthread_t th;
  if (pthread_create(&th, NULL, second_thread, NULL) != 0) rt_die("pthread_create");
  while (!__atomic_load_n(&thread_set_up, __ATOMIC_SEQ_CST)) rt_sleep_ms(1);
  /* After pthread_create, which may install glibc's own handlers. */
  struct status_lines main_before, strict_before;
  read_status((pid_t)syscall(SYS_gettid), &main_before);
  if (strict_tid) read_status(strict_tid, &strict_before);
  rt_ready();
  rt_wait_go(go_path);
  if (late_failure) rt_fail("the process ran after a failed restore");

  compare_status("main thread", (pid_t)syscall(SYS_gettid), &main_before);
  if (!plain) {
    /* Its answer says it runs its own code again (the restorer may still
     * have been handing it its registers when we got here): compare it
     * after that, then let it exit. */
    char c = 'a';
    RT_CHECK(write(to_strict[1], &c, 1) == 1, "write to the strict thread: %s", strerror(errno));
    RT_CHECK(read(from_strict[0], &c, 1) == 1 && c == 'b', "the strict thread answered '%c', not 'b'", c);
    compare_status("strict thread", strict_tid, &strict_before);
    RT_CHECK(write(to_strict[1], &c, 1) == 1, "write to the strict thread: %s", strerror(errno));
    expect_getppid_errno("main thread", 78);
    int bits = prctl(PR_GET_SECUREBITS);
    RT_CHECK(bits == ((1 << 0) | (1 << 4)), "securebits 0x%x, expected 0x11", bits);
  }
  __atomic_store_n(&thread_go, 1, __ATOMIC_SEQ_CST);
  pthread_join(th, NULL);
  return rt_finish();
}
