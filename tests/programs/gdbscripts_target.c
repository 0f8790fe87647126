// Target for the gdb-scripts tests (tests/gdbscripts): a process whose
// descriptors, signal state and memory have known values that `ckpt fds`,
// `ckpt signals` and `ckpt maps` must show.
//
// usage: gdbscripts_target DATAFILE
//
//   fd 42  DATAFILE, O_RDWR, 8192 bytes written, position 1234
//   fd 50  read end of a pipe holding "hello"
//   fd 51  write end of that pipe
//   SIGUSR1 handled by on_usr1 (SA_RESTART), SIGPIPE ignored
//   thread 2 ("blocker") blocks SIGUSR2 and has one SIGUSR2 pending;
//   the main thread blocks nothing
//   a private read-only mapping of DATAFILE, never touched (bytes: the file)
//   a 1 MiB anonymous mapping with only its first page written
//     (bytes: one page in the image, the rest zero)
//
// Prints "KEY VALUE" lines, then "ready", then sleeps until killed.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_count;
static sem_t blocker_ready;
static volatile pid_t blocker_tid;

void on_usr1(int sig) { usr1_count++; }

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void *blocker(void *arg) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) die("pthread_sigmask");
  blocker_tid = (pid_t)syscall(SYS_gettid);
  // Pending for this thread alone: it stays pending because it is blocked.
  if (syscall(SYS_tgkill, getpid(), blocker_tid, SIGUSR2) != 0) die("tgkill");
  sem_post(&blocker_ready);
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DATAFILE\n", argv[0]);
    return 2;
  }
  const char *path = argv[1];

  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (f < 0) die("open");
  static char block[8192];
  memset(block, 'x', sizeof block);
  if (write(f, block, sizeof block) != (ssize_t)sizeof block) die("write");
  if (lseek(f, 1234, SEEK_SET) != 1234) die("lseek");
  if (dup2(f, 42) != 42) die("dup2");
  close(f);

  int p[2];
  if (pipe(p) != 0) die("pipe");
  if (dup2(p[0], 50) != 50 || dup2(p[1], 51) != 51) die("dup2 pipe");
  close(p[0]);
  close(p[1]);
  if (write(51, "hello", 5) != 5) die("write pipe");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction SIGUSR1");
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) die("signal SIGPIPE");

  void *filemap = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 42, 0);
  if (filemap == MAP_FAILED) die("mmap file");
  char *anon = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) die("mmap anon");
  memset(anon, 0x5a, 4096);

  sem_init(&blocker_ready, 0, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, blocker, NULL) != 0) die("pthread_create");
  pthread_setname_np(t, "blocker");
  while (sem_wait(&blocker_ready) != 0) {
  }

  printf("blocker_tid %d\n", (int)blocker_tid);
  printf("on_usr1 %p\n", (void *)on_usr1);
  printf("filemap %p\n", filemap);
  printf("anon %p\n", (void *)anon);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
