/* A program that checkpoints itself with libckpt, then carries on.
 *
 *   cc selfckpt.c $(pkg-config --cflags --libs ckpt) -o selfckpt
 *   ./selfckpt /tmp/self.core     # prints "checkpoint 1234..." and "original"
 *   imgtool restore /tmp/self.core   # prints "restored", from the same call
 *
 * A scratch buffer it can rebuild is left out of the image (ckpt_exclude):
 * it comes back zero-filled, and the restored copy refills it. */
#define _GNU_SOURCE
#include <ckpt/ckpt.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define SCRATCH_BYTES (8u << 20)

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  int steps_done = 41;  /* state worth keeping */
  char *scratch = mmap(NULL, SCRATCH_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (scratch == MAP_FAILED) return 1;
  memset(scratch, 'x', SCRATCH_BYTES);
  int r = ckpt_exclude(scratch, SCRATCH_BYTES);
  if (r < 0) {
    fprintf(stderr, "ckpt_exclude: %s\n", strerror(-r));
    return 1;
  }
  long id = ckpt_checkpoint(argv[1], 0);
  if (id < 0) {
    fprintf(stderr, "ckpt_checkpoint: %s\n", strerror((int)-id));
    return 1;
  }
  steps_done++;
  if (id > 0) {
    printf("checkpoint %ld written to %s\n", id, argv[1]);
    printf("original: %d steps done\n", steps_done);
  } else {
    /* The scratch buffer reads zeros here: rebuild it. */
    int was_zero = scratch[0] == 0 && scratch[SCRATCH_BYTES - 1] == 0;
    memset(scratch, 'x', SCRATCH_BYTES);
    printf("restored: %d steps done, scratch buffer %s\n", steps_done, was_zero ? "rebuilt" : "NOT ZERO");
  }
  return 0;
}
