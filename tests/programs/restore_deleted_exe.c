/* Restore test: a running executable that was deleted. The program copies
 * itself into WORKDIR, execs the copy and unlinks it, so /proc/self/exe
 * reads "WORKDIR/deleted-exe (deleted)". After the restore /proc/self/exe
 * names the same deleted file, is an ELF file, and the code still runs.
 *   usage: restore_deleted_exe GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/stat.h>

static void copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (in < 0 || out < 0) rt_die("open %s / %s", from, to);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, n) != n) rt_die("write %s", to);
  close(in);
  close(out);
}

static void read_exe_link(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  out[n > 0 ? n : 0] = 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[3], "copied") == 0) {
    rt_start(argc, argv, 3);
    /* Running from the copy: delete it. */
    char self[4096];
    snprintf(self, sizeof self, "%s/deleted-exe", argv[2]);
    if (unlink(self) < 0) rt_die("unlink %s", self);
    static char before[4096];
    read_exe_link(before, sizeof before);
    if (!strstr(before, "(deleted)")) rt_die("/proc/self/exe is %s, not deleted", before);
    printf("exe %s\n", before);
    rt_ready();
    rt_wait_go(argv[1]);

    char after[4096];
    read_exe_link(after, sizeof after);
    RT_CHECK(strcmp(after, before) == 0, "/proc/self/exe is \"%s\" after the restore, \"%s\" before", after, before);
    char magic[4] = {0};
    int fd = open("/proc/self/exe", O_RDONLY);
    RT_CHECK(fd >= 0 && read(fd, magic, 4) == 4 && memcmp(magic, "\177ELF", 4) == 0,
             "/proc/self/exe does not open as an ELF file after the restore");
    if (fd >= 0) close(fd);
    return rt_finish();
  }
  rt_start(argc, argv, 3);
  char copy[4096];
  snprintf(copy, sizeof copy, "%s/deleted-exe", argv[2]);
  copy_file("/proc/self/exe", copy);
  char *args[] = {copy, argv[1], argv[2], "copied", NULL};
  execv(copy, args);
  rt_die("execv %s", copy);
}
