/* ckpt_checkpoint: the calling thread spawns `imgtool dump` on its own
 * process and waits in read() on a pipe from it. The dump records that
 * read as having returned kRestoredValue (imgtool's --libckpt-caller), so
 * the restored copy sees that value, while in the original the helper
 * writes the checkpoint id once the image is in place. */
#define _GNU_SOURCE
#include <ckpt/ckpt.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "find_imgtool.h"

/* What the restored read() returns: more than the 8 bytes asked for, so
 * no real read() can return it ("CKPTRSTD"'s low 7 bytes). */
#define kRestoredValue 0x44545352544b43ull

/* The helper's fd for the result pipe's write end. */
#define kResultFd 3

struct helper_args {
  const char *imgtool;
  char *const *argv;
  int result_write;
  sigset_t caller_mask; /* the mask to exec imgtool with */
};

/* Runs in the vfork()ed helper, on its own stack and in our memory: only
 * async-signal-safe calls, nothing that allocates. */
static int helper_main(void *p) {
  const struct helper_args *a = p;
  int fd = a->result_write;
  /* The program's handlers are code in our memory: reset them before
   * unblocking signals (posix_spawn does the same; without CLONE_SIGHAND
   * this changes only the helper's copy of the table). */
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL) {
      sa.sa_handler = SIG_DFL;
      sa.sa_flags = 0;
      sigaction(sig, &sa, NULL);
    }
  }
  if (fd == kResultFd)
    fcntl(fd, F_SETFD, 0);
  else if (dup2(fd, kResultFd) < 0)
    goto fail;
  /* Leave the program's other fds out of imgtool (a pipe's write end held
   * there would keep the program's reader waiting for EOF). */
  syscall(SYS_close_range, kResultFd + 1, ~0u, 0);
  /* If the calling thread dies, imgtool abandons the dump cleanly (SIGTERM
   * cancels it: no file, the process let go). */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  sigprocmask(SIG_SETMASK, &a->caller_mask, NULL);
  execv(a->imgtool, a->argv);
fail:;
  int64_t err = -(int64_t)errno;
  if (write(kResultFd, &err, sizeof err) < 0) _exit(127);
  _exit(127);
}

/* The directory that will hold path must exist and be writable: checked
 * here so that the common mistakes get their own errno. */
static int check_output_dir(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!slash) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = 0;
  }
  struct stat st;
  if (stat(dir, &st) < 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  if (access(dir, W_OK | X_OK) < 0) return -errno;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return -EISDIR;
  return 0;
}

static long wait_helper(pid_t helper, int *exit_code) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  /* By pid: no other child of the program's is ever reaped here. ECHILD:
   * the program reaped the helper itself (a SIGCHLD handler calling
   * waitpid(-1)); its exit status is lost, the pipe still tells. */
  while (waitid(P_PID, (id_t)helper, &si, WEXITED) < 0) {
    if (errno == ECHILD) {
      *exit_code = -1;
      return 0;
    }
    if (errno != EINTR) return -errno;
  }
  *exit_code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
  return 0;
}

/* A helper killed mid-dump (SIGKILL) cannot remove its temporary file,
 * writer/src/output.cc's "DIR/.BASE.tmp-XXXXXXXX" beside path: remove
 * those made since the call began (not another dump's older ones). */
static void remove_abandoned_temp(const char *path, struct timespec since) {
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX], prefix[NAME_MAX + 8];
  if (!slash)
    strcpy(dir, ".");
  else if (slash == path)
    strcpy(dir, "/");
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  snprintf(prefix, sizeof prefix, ".%s.tmp-", slash ? slash + 1 : path);
  DIR *d = opendir(dir);
  if (!d) return;
  size_t plen = strlen(prefix);
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, prefix, plen) != 0 || strlen(e->d_name) != plen + 8 ||
        strspn(e->d_name + plen, "0123456789abcdef") != 8)
      continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        (st.st_ctim.tv_sec > since.tv_sec ||
         (st.st_ctim.tv_sec == since.tv_sec && st.st_ctim.tv_nsec >= since.tv_nsec)))
      unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

static pthread_mutex_t checkpoint_lock = PTHREAD_MUTEX_INITIALIZER;
static long checkpoint_locked(const char *imgtool, const char *path, unsigned flags);

long ckpt_checkpoint(const char *path, unsigned flags) {
  /* "-" would be imgtool's standard output, which is the program's. */
  if (!path || !*path || strcmp(path, "-") == 0 || strlen(path) >= PATH_MAX || (flags & ~(CKPT_EXEC | CKPT_KILL)))
    return -EINVAL;
  char imgtool[PATH_MAX];
  int r = ckpt_find_imgtool(imgtool, sizeof imgtool);
  if (r < 0) return r;
  r = check_output_dir(path);
  if (r < 0) return r;

  /* One checkpoint at a time: a second helper would find the first as a
   * child of ours and refuse. The restored copy finds the lock held by the
   * same thread (same tid) and releases it as the original does. */
  pthread_mutex_lock(&checkpoint_lock);
  long result = checkpoint_locked(imgtool, path, flags);
  pthread_mutex_unlock(&checkpoint_lock);
  return result;
}

static long checkpoint_locked(const char *imgtool, const char *path, unsigned flags) {
  /* File timestamps come from the coarse clock: compare with it. */
  struct timespec started;
  clock_gettime(CLOCK_REALTIME_COARSE, &started);
  char pid_text[16], caller[64];
  snprintf(pid_text, sizeof pid_text, "%d", (int)getpid());
  snprintf(caller, sizeof caller, "%d:%llu:%d", (int)gettid(), (unsigned long long)kRestoredValue, kResultFd);
  char *argv[12];
  int argc = 0;
  argv[argc++] = (char *)"imgtool";
  argv[argc++] = (char *)"dump";
  argv[argc++] = (char *)"--pid";
  argv[argc++] = pid_text;
  argv[argc++] = (char *)"-o";
  argv[argc++] = (char *)path;
  argv[argc++] = (char *)"--libckpt-caller";
  argv[argc++] = caller;
  if (flags & CKPT_KILL) argv[argc++] = (char *)"--kill";
  if (flags & CKPT_EXEC) argv[argc++] = (char *)"--exec";
  argv[argc] = NULL;

  /* Every signal stays blocked in this thread until we return: the read()
   * below must be the one the dump finds us in, and a handler running
   * meanwhile would not be. Signals arriving meanwhile stay pending (and
   * are in the image as pending). */
  struct helper_args args = {imgtool, argv, -1, {{0}}};
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &args.caller_mask);

  long result;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    result = -errno;
    goto out_mask;
  }
  args.result_write = pipefd[1];
  const size_t stack_size = 64 * 1024;
  void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    result = -errno;
    close(pipefd[0]);
    close(pipefd[1]);
    goto out_mask;
  }
  /* vfork-style, as posix_spawn. Kernel quirk: an exit signal other than
   * SIGCHLD would not hide the helper from the program, as execve() resets
   * it to SIGCHLD (de_thread(): "we have changed execution domain"). So
   * the program may see a SIGCHLD for it, and its own wait(-1) may reap
   * it: wait_helper copes, and the id on the pipe decides success. */
  pid_t helper = clone(helper_main, (char *)stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  int clone_errno = errno;
  munmap(stack, stack_size);
  close(pipefd[1]);
  if (helper < 0) {
    close(pipefd[0]);
    result = -clone_errno;
    goto out_mask;
  }
  /* Yama (ptrace_scope 1) lets only ancestors trace us; the helper is our
   * child. Without Yama this says EINVAL, harmlessly. */
  prctl(PR_SET_PTRACER, (unsigned long)helper, 0, 0, 0);

  int64_t value = 0;
  ssize_t n;
  do
    n = read(pipefd[0], &value, sizeof value);
  while (n < 0 && errno == EINTR);
  if ((uint64_t)n == kRestoredValue) {
    /* The restored copy: no helper here (the dump left it out), and the
     * pipe came back with no writer. */
    close(pipefd[0]);
    result = 0;
    goto out_mask;
  }
  int read_errno = errno;
  close(pipefd[0]);
  int exit_code = 0;
  long waited = wait_helper(helper, &exit_code);
  if (exit_code >= 128) remove_abandoned_temp(path, started);
  prctl(PR_SET_PTRACER, 0, 0, 0, 0);
  if (n < 0)
    result = -read_errno;
  else if (waited < 0)
    result = waited;
  else if (n == (ssize_t)sizeof value && value < 0)
    result = value; /* exec failed: its errno */
  else if (n == (ssize_t)sizeof value && value > 0 && exit_code <= 0)
    result = value; /* written only once the image is in place */
  else
    result = -EIO; /* imgtool failed (its line is on stderr) or died */

out_mask:
  pthread_sigmask(SIG_SETMASK, &args.caller_mask, NULL);
  return result;
}
