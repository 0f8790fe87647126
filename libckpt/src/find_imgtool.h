/* Where libckpt finds imgtool (the order is documented in <ckpt/ckpt.h>). */
#ifndef CKPT_FIND_IMGTOOL_H
#define CKPT_FIND_IMGTOOL_H

#include <stddef.h>

/* Writes the path of the imgtool to run into out; 0 or -ENOENT. */
__attribute__((visibility("hidden"))) int ckpt_find_imgtool(char *out, size_t size);

#endif
