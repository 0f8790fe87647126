// A freestanding static program (no libc: no __restore_rt of its own)
// whose `mov $15,%rax; syscall` (rt_sigreturn) sequences are in two
// executable mappings of a memfd it writes, the first one a search in
// address order finds, and a second one. argv: GOFILE WORKDIR SIDEDIR.
// Once SIDEDIR/hide exists it makes the first mapping non-executable and
// creates SIDEDIR/hidden; when GOFILE exists it writes PASS to stderr and exits 0.
// A dumper that searched the sequence before the freeze must check it is
// still executable at its use: returning an injected syscall there would
// kill this program with SIGSEGV (tests/faults/injection_faults_test.cc).
typedef unsigned long u64;

static long sys(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

enum { SYS_write_ = 1, SYS_mmap_ = 9, SYS_mprotect_ = 10, SYS_close_ = 3, SYS_access_ = 21, SYS_nanosleep_ = 35,
       SYS_exit_ = 60, SYS_openat_ = 257, SYS_memfd_create_ = 319 };

static u64 len(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}
static void say(int fd, const char *s) { sys(SYS_write_, fd, (long)s, (long)len(s), 0, 0, 0); }
static void join(char *out, const char *dir, const char *name) {
  u64 n = 0;
  for (u64 i = 0; dir[i] && n < 4000; i++) out[n++] = dir[i];
  out[n++] = '/';
  for (u64 i = 0; name[i] && n < 4090; i++) out[n++] = name[i];
  out[n] = 0;
}
static int exists(const char *path) { return sys(SYS_access_, (long)path, 0, 0, 0, 0, 0) == 0; }
static void nap(void) {
  long ts[2] = {0, 5000000};
  sys(SYS_nanosleep_, (long)ts, 0, 0, 0, 0, 0);
}

__attribute__((used)) static void main_(long *sp) {
  char **argv = (char **)(sp + 1);
  if (*sp < 4) sys(SYS_exit_, 2, 0, 0, 0, 0, 0);
  const char *gofile = argv[1], *dir = argv[3];
  char hide[4100], hidden[4100];
  join(hide, dir, "hide");
  join(hidden, dir, "hidden");
  // The sequence, padded with int3, in a memfd mapped r-x (its mapping's
  // path starts with "/memfd:", as a file's does).
  static const unsigned char code[16] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f,
                                         0x05, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc};
  long fd = sys(SYS_memfd_create_, (long)"sigreturn", 0, 0, 0, 0, 0);
  if (fd < 0 || sys(SYS_write_, fd, (long)code, sizeof code, 0, 0, 0) != sizeof code) sys(SYS_exit_, 3, 0, 0, 0, 0, 0);
  // mmap places each new mapping below the last: `at` is found first, and
  // `spare` is what a search made again finds.
  long spare = sys(SYS_mmap_, 0, 4096, 1 | 4 /* PROT_READ|PROT_EXEC */, 1 /* MAP_SHARED */, fd, 0);
  long at = sys(SYS_mmap_, 0, 4096, 1 | 4, 1, fd, 0);
  if ((at < 0 && at > -4096) || (spare < 0 && spare > -4096) || at >= spare) sys(SYS_exit_, 4, 0, 0, 0, 0, 0);
  say(1, "ready\n");
  int hidden_done = 0;
  for (;;) {
    if (!hidden_done && exists(hide)) {
      if (sys(SYS_mprotect_, at, 4096, 1 /* PROT_READ */, 0, 0, 0) != 0) sys(SYS_exit_, 5, 0, 0, 0, 0, 0);
      long h = sys(SYS_openat_, -100 /* AT_FDCWD */, (long)hidden, 0100 | 01 /* O_CREAT|O_WRONLY */, 0600, 0, 0);
      if (h < 0) sys(SYS_exit_, 6, 0, 0, 0, 0, 0);
      sys(SYS_close_, h, 0, 0, 0, 0, 0);
      hidden_done = 1;
    }
    if (exists(gofile)) {
      say(2, hidden_done ? "PASS\n" : "FAIL: never asked to hide the sequence\n");
      sys(SYS_exit_, hidden_done ? 0 : 1, 0, 0, 0, 0, 0);
    }
    nap();
  }
}

__asm__(".globl _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call main_\n  hlt\n");
