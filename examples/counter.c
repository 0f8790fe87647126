// The demo's example: a process with some state worth checkpointing. It
// counts once a second, keeps a running checksum of its counter in a global
// and a thread-local, and prints both, so a restored copy visibly carries on
// from where the original was.
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned long counter;
static __thread unsigned long tls_sum;
static char message[64] = "counting";

static void *ticker(void *arg) {
  (void)arg;
  for (;;) {
    sleep(1);
    counter++;
    tls_sum += counter;
    printf("%s: %lu (sum %lu, pid %d)\n", message, counter, tls_sum, (int)getpid());
    fflush(stdout);
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  pthread_join(t, NULL);
  return 0;
}
