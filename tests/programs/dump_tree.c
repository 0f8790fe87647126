/* A process tree for `imgtool dump`: the parent, two children, a grandchild
 * (under child 1) and a zombie child, sharing what forks share:
 *   - a pipe whose read end every process holds, with "tree-pipe" buffered;
 *   - an open file (argv[1]) whose one file description (and offset, 5 after
 *     writing "hello") every process holds as fd 5;
 *   - MAP_SHARED|MAP_ANONYMOUS memory (one shmem object) with "shared!".
 * The zombie exited with status 7 and is never reaped (waitid WNOWAIT).
 * Child 2 is forked by a second thread of the parent (forker_tid). With
 * argv[2] = "netlink-in-child", child 2 also holds a netlink socket, which
 * restore does not support (fd 6); with "churn", child 2 forks and reaps short-lived
 * children without pause. Prints "KEY value" lines (child1, child2,
 * forker_tid, grandchild, zombie, shared_addr) then "ready"; every process waits in
 * pause() (in a function named after its role, for backtraces). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
}

__attribute__((noinline)) static void grandchild_main(void) {
  for (;;) pause();
}

__attribute__((noinline)) static void child1_main(void) {
  for (;;) pause();
}

__attribute__((noinline)) static void child2_main(void) {
  for (;;) pause();
}

struct forker {
  pid_t parent;
  const char *mode;
  pid_t child;
  int done;
  pid_t tid;
};

static void *fork_child2(void *arg) {
  struct forker *f = arg;
  f->tid = gettid();
  pid_t c = fork();
  if (c == 0) {
    die_with_parent(f->parent);
    if (strcmp(f->mode, "netlink-in-child") == 0 && socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) < 0) _exit(1);
    if (strcmp(f->mode, "churn") == 0) {
      /* Children come and go all the time: the dump meets some alive,
       * some exiting, some zombies. */
      for (;;) {
        pid_t k = fork();
        if (k == 0) _exit(3);
        if (k > 0) waitpid(k, NULL, 0);
      }
    }
    child2_main();
  }
  f->child = c;
  __atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  int p[2];
  if (pipe(p) != 0 || write(p[1], "tree-pipe", 9) != 9) return 1;
  int f = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (f < 0 || dup2(f, 5) != 5) return 1;
  if (f != 5) close(f);
  if (write(5, "hello", 5) != 5) return 1;
  char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return 1;
  strcpy(shared, "shared!");
  pid_t parent = getpid();

  pid_t c1 = fork();
  if (c1 < 0) return 1;
  if (c1 == 0) {
    die_with_parent(parent);
    pid_t me = getpid();
    pid_t g = fork();
    if (g == 0) {
      die_with_parent(me);
      grandchild_main();
    }
    printf("grandchild %d\n", g);
    fflush(stdout);
    child1_main();
  }
  /* Child 2 is forked by a second thread of the parent (which then waits
   * in pause: PR_SET_PDEATHSIG follows the forking thread). */
  struct forker f2 = {parent, argc > 2 ? argv[2] : "", -1, 0, 0};
  pthread_t th;
  if (pthread_create(&th, NULL, fork_child2, &f2) != 0) return 1;
  while (!__atomic_load_n(&f2.done, __ATOMIC_ACQUIRE)) usleep(1000);
  pid_t c2 = f2.child;
  if (c2 < 0) return 1;
  pid_t z = fork();
  if (z < 0) return 1;
  if (z == 0) _exit(7);
  siginfo_t si;
  if (waitid(P_PID, z, &si, WEXITED | WNOWAIT) != 0) return 1;
  /* The grandchild's line comes from child 1; wait until it is there. */
  for (int i = 0; i < 1000; i++) {
    char path[64], buf[64] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", c1, c1);
    FILE *fp = fopen(path, "r");
    if (fp) {
      if (!fgets(buf, sizeof buf, fp)) buf[0] = 0;
      fclose(fp);
    }
    if (buf[0]) break;
    usleep(10000);
  }
  usleep(100000);
  printf("child1 %d\nchild2 %d\nforker_tid %d\nzombie %d\nshared_addr %p\nready\n", c1, c2, f2.tid, z,
         (void *)shared);
  fflush(stdout);
  for (;;) pause();
}
