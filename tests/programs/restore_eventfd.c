/* Restore test: eventfds (issue 13). Fd 40: EFD_SEMAPHORE | EFD_NONBLOCK
 * with counter 7 (created with 5, then 2 written); fd 41 a dup of it (one
 * open file: reading through one counts down the other); fd 42: a plain
 * blocking eventfd whose counter is above 2^32 (eventfd() itself takes only
 * an unsigned int); fd 43: counter 0. After the restore each counter,
 * mode and flag is as it was.
 *   usage: restore_eventfd GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>

#define FD_SEM 40
#define FD_SEM_DUP 41
#define FD_BIG 42
#define FD_ZERO_COUNTER 43
#define BIG_COUNT 0x123456789abULL

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  rt_place(eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK), FD_SEM);
  uint64_t two = 2;
  if (write(FD_SEM, &two, 8) != 8) rt_die("write 2");
  if (dup2(FD_SEM, FD_SEM_DUP) < 0) rt_die("dup2");
  rt_place(eventfd(0, 0), FD_BIG);
  uint64_t big = BIG_COUNT;
  if (write(FD_BIG, &big, 8) != 8) rt_die("write big");
  rt_place(eventfd(0, EFD_NONBLOCK), FD_ZERO_COUNTER);
  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(fcntl(FD_SEM, F_GETFL) & O_NONBLOCK, "fd 40: O_NONBLOCK lost");
  RT_CHECK(!(fcntl(FD_BIG, F_GETFL) & O_NONBLOCK), "fd 42: O_NONBLOCK appeared");
  RT_CHECK(fcntl(FD_SEM, F_GETFD) == 0, "fd 40: FD_CLOEXEC changed");
  /* A semaphore reads 1 per read; the dup shares the counter: 7 reads in
   * all, alternating fds, then EAGAIN. */
  int reads = 0;
  for (;;) {
    uint64_t v = 0;
    ssize_t n = read(reads % 2 ? FD_SEM_DUP : FD_SEM, &v, 8);
    if (n != 8) break;
    RT_CHECK(v == 1, "semaphore read %d gave %llu, expected 1", reads, (unsigned long long)v);
    if (++reads > 100) break;
  }
  RT_CHECK(reads == 7, "semaphore counted down %d times, expected 7 (shared by the dup)", reads);
  RT_CHECK(errno == EAGAIN, "after the semaphore: %s, expected EAGAIN", strerror(errno));
  uint64_t v = 0;
  RT_CHECK(read(FD_BIG, &v, 8) == 8 && v == BIG_COUNT, "fd 42: counter %llx, expected %llx", (unsigned long long)v,
           (unsigned long long)BIG_COUNT);
  RT_CHECK(read(FD_ZERO_COUNTER, &v, 8) < 0 && errno == EAGAIN, "fd 43: a zero counter read did not say EAGAIN");
  /* Still an eventfd that works: a write wakes a read. */
  uint64_t one = 1;
  RT_CHECK(write(FD_ZERO_COUNTER, &one, 8) == 8 && read(FD_ZERO_COUNTER, &v, 8) == 8 && v == 1, "fd 43: write/read after restore");
  return rt_finish();
}
