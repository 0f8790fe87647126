/* A target that exits right after "ready" (after a short, varying amount of
 * work with threads coming and going), to race a dump against its exit.
 * With a negative count it churns threads forever instead (thread churn
 * during a dump). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static void *short_lived(void *arg) { return arg; }

static void churn(long rounds) {
  for (long i = 0; rounds < 0 || i < rounds; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, short_lived, NULL) == 0) pthread_join(t, NULL);
  }
}

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  /* argv[1]: how many threads to churn through before exiting. */
  long rounds = argc > 1 ? atol(argv[1]) : 0;
  printf("ready\n");
  fflush(stdout);
  churn(rounds);
  exit(0);
}
