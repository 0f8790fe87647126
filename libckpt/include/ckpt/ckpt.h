/* <ckpt/ckpt.h>: a program checkpoints itself (libckpt, link -lckpt or
 * `pkg-config --cflags --libs ckpt`). Plain C, usable from C++.
 *
 * The image written is the same as `imgtool dump --pid $$ -o PATH` would
 * write: an ELF core file that gdb opens and `imgtool restore PATH` brings
 * back. The library does the dump through a helper process running
 * imgtool, which it finds, in this order, at:
 *   1. $CKPT_IMGTOOL, if set (and only there: set but not executable is
 *      -ENOENT, never a fallback to another imgtool);
 *   2. the install path compiled in (${prefix}/bin/imgtool);
 *   3. the build tree's imgtool compiled in (for uninstalled builds);
 *   4. `imgtool` on $PATH.
 * A failing imgtool writes its one-line reason to the program's stderr. */
#ifndef CKPT_CKPT_H
#define CKPT_CKPT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ckpt_checkpoint flag: write the self-restoring executable form
 *  (`imgtool dump --exec`) instead of the core-typed file. */
#define CKPT_EXEC 0x1u
/** ckpt_checkpoint flag: end the process once the image is safely written
 *  (`imgtool dump --kill`); only the restored copy carries on. */
#define CKPT_KILL 0x2u

/** Writes an image of the calling process (all its threads) to path (a
 *  file name; relative to the current directory).
 *
 *  Returns, like fork():
 *    > 0  in the caller, once the image is complete: the checkpoint id
 *         (the first 8 bytes of the image's id, sign bit cleared; unique
 *         per checkpoint);
 *    0    in the process restored from that image, which continues from
 *         this call;
 *    < 0  a negative errno; no file is left at path and the caller carries
 *         on: -EINVAL (bad flags or path), -ENOENT (no imgtool found, or
 *         path's directory missing), -EACCES/-ENOTDIR/-EROFS (path's
 *         directory not writable), -EIO (imgtool refused or failed; its
 *         reason is on stderr), or what spawning the helper returned.
 *
 *  The calling thread waits in one read() while the helper freezes the
 *  process; the other threads are frozen together for the dump and then
 *  run on. During the call the calling thread blocks every signal (they
 *  stay pending and arrive afterwards, in the original and in the restored
 *  copy). The helper is the caller's child for the duration of the call:
 *  the program may see a SIGCHLD for it, and a wait(-1) of the program's
 *  may reap it (harmless); the library reaps the helper by its pid only,
 *  never another child of the program's.
 *  Like `imgtool dump`, a process with child processes is refused for now.
 *  Without CAP_SYS_PTRACE the helper needs the Yama permission this call
 *  grants with prctl(PR_SET_PTRACER) and resets to none afterwards (an
 *  earlier PR_SET_PTRACER setting of the program is lost). */
long ckpt_checkpoint(const char *path, unsigned flags);

/** Leaves the pages [addr, addr + len) out of every later checkpoint, from
 *  ckpt_checkpoint and from `imgtool dump` alike: they are not stored, and
 *  come back as zero-filled pages of the same protection. For scratch
 *  buffers and caches the program can rebuild.
 *
 *  addr must be page-aligned; len is rounded up to whole pages. The range
 *  must lie in private anonymous memory (malloc/mmap(MAP_PRIVATE |
 *  MAP_ANONYMOUS), heap, stack). Returns 0, -EINVAL (unaligned, or not
 *  private anonymous memory), -ENOMEM (not all mapped), or the errno of
 *  creating the table below. An exclusion lasts as long as the process
 *  (and its restored copies): memory mapped at those addresses later is
 *  left out too; there is no way to undo it.
 *
 *  The marker, seen from outside (docs/FORMAT.md, "Excluded pages"): a
 *  memfd named "ckpt-exclude" (/proc/PID/fd/N links to
 *  "/memfd:ckpt-exclude (deleted)", close-on-exec) holding the table of
 *  ranges; it is in the image like any memfd, so a restored process keeps
 *  it. Where the kernel has PR_SET_VMA_ANON_NAME, the range is also named
 *  "ckpt-exclude" ("[anon:ckpt-exclude]" in /proc/PID/maps). Closing that
 *  fd drops earlier exclusions (the next call starts a new table). */
int ckpt_exclude(void *addr, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* CKPT_CKPT_H */
