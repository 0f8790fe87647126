#define _GNU_SOURCE
#include "find_imgtool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int use(const char *path, char *out, size_t size) {
  if (access(path, X_OK) != 0 || strlen(path) >= size) return -ENOENT;
  strcpy(out, path);
  return 0;
}

int ckpt_find_imgtool(char *out, size_t size) {
  /* An explicit choice is never second-guessed. */
  const char *env = getenv("CKPT_IMGTOOL");
  if (env && *env) return use(env, out, size);
  if (use(CKPT_IMGTOOL_INSTALLED, out, size) == 0) return 0;
  if (use(CKPT_IMGTOOL_BUILD, out, size) == 0) return 0;
  const char *path = getenv("PATH");
  if (!path) return -ENOENT;
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t n = colon ? (size_t)(colon - path) : strlen(path);
    char candidate[4096];
    if (n > 0 && n + sizeof "/imgtool" <= sizeof candidate) {
      memcpy(candidate, path, n);
      strcpy(candidate + n, "/imgtool");
      if (use(candidate, out, size) == 0) return 0;
    }
    path += n + (colon ? 1 : 0);
  }
  return -ENOENT;
}
