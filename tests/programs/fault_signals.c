/* Fault test target (tests/faults): counts the SIGUSR1s it gets. A test
 * sends SIGUSR1 (and a SIGSTOP, as a shell would) while a dump borrows the
 * main thread for an injected syscall and the dumper is killed right after:
 * the signal must arrive exactly once all the same (DECISIONS 178).
 *   usage: fault_signals GOFILE WORKDIR EXPECTED_SIGUSR1_COUNT */
#include "rt_prog.h"

static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig) {
  (void)sig;
  usr1_count++;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  rt_on_signal(SIGUSR1, on_usr1);
  rt_ready();
  rt_wait_go(argv[1]);
  RT_CHECK(usr1_count == atoi(argv[3]), "SIGUSR1 arrived %d times, expected %s", (int)usr1_count, argv[3]);
  return rt_finish();
}
