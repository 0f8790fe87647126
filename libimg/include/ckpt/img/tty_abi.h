// The kernel's struct termios2 (TCGETS2/TCSETS2) and its copy in TtyState,
// shared by the writer (capture) and the reader (restore). glibc's
// <termios.h> and the kernel's <asm/termbits.h> both define struct termios
// and cannot be included together, so the layout is spelled out here.
#pragma once

#include <cerrno>
#include <cstring>
#include <span>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/img/records.h>

namespace ckpt::img {

/// struct termios2 of include/uapi/asm-generic/termbits.h (x86_64: NCCS 19).
struct KernelTermios2 {
  u32 c_iflag, c_oflag, c_cflag, c_lflag;
  u8 c_line;
  u8 c_cc[19];
  u32 c_ispeed, c_ospeed;
};
static_assert(sizeof(KernelTermios2) == 44);

inline constexpr unsigned long kTcgets2 = _IOR('T', 0x2A, KernelTermios2);
inline constexpr unsigned long kTcsets2 = _IOW('T', 0x2B, KernelTermios2);

// The fields TtyState and KernelTermios2 both name, from `from` into `to`.
template <class To, class From>
inline void copy_termios_fields(To &to, const From &from) {
  static_assert(sizeof to.c_cc == sizeof from.c_cc);
  to.c_iflag = from.c_iflag;
  to.c_oflag = from.c_oflag;
  to.c_cflag = from.c_cflag;
  to.c_lflag = from.c_lflag;
  to.c_line = from.c_line;
  std::memcpy(to.c_cc, from.c_cc, sizeof to.c_cc);
  to.c_ispeed = from.c_ispeed;
  to.c_ospeed = from.c_ospeed;
}

inline KernelTermios2 termios_of(const TtyState &s) {
  KernelTermios2 t{};
  copy_termios_fields(t, s);
  return t;
}

inline void set_termios(TtyState &s, const KernelTermios2 &t) { copy_termios_fields(s, t); }

/// The pty index of a Unix98 slave's rdev, or -1. The pts driver numbers
/// its devices 136:N with 20-bit minors (/dev/pts/300 is 136:300); the
/// eight majors 136..143 are the region it reserves.
inline int pty_slave_index(unsigned major_number, unsigned minor_number) {
  if (major_number < 136 || major_number > 143) return -1;
  return int(((major_number - 136) << 20) + minor_number);
}

/// Puts queued bytes back into a pty pair: `input` as if typed at the
/// master (the slave reads it), `output` as if written by the slave (the
/// master reads it). Both were read out after the line discipline had
/// processed them, so they must not be processed again: for the writes
/// the slave gets `t` without input translation, output processing,
/// echo, signals and editing characters (ICANON stays: complete lines
/// stay lines), then `t` again once the bytes have landed (pty writes
/// reach the other side's line discipline through a work queue, so the
/// counts are polled for). 0 or an errno.
inline int push_pty_queues(int master, int slave, const KernelTermios2 &t, std::span<const u8> input,
                           std::span<const u8> output) {
  if (input.empty() && output.empty()) return 0;
  KernelTermios2 quiet = t;
  // asm-generic/termbits.h values (<termios.h> cannot be included here).
  quiet.c_iflag &= ~u32(0000040 | 0000100 | 0000200 | 0000400 | 0001000 | 0002000 | 0010000);  // ISTRIP INLCR IGNCR ICRNL IUCLC IXON IXOFF
  quiet.c_oflag &= ~u32(0000001);                                                             // OPOST
  quiet.c_lflag &= ~u32(0000001 | 0000010 | 0000020 | 0000040 | 0000100 | 0100000);           // ISIG ECHO ECHOE ECHOK ECHONL IEXTEN
  for (int i : {2, 3, 4, 12, 14, 15}) quiet.c_cc[i] = 0;  // VERASE VKILL VEOF VREPRINT VWERASE VLNEXT
  int before_in = 0, before_out = 0;
  ioctl(slave, FIONREAD, &before_in);
  ioctl(master, FIONREAD, &before_out);
  if (ioctl(slave, kTcsets2, &quiet) != 0) return errno;
  int err = 0;
  auto write_all = [&](int fd, std::span<const u8> bytes) {
    size_t done = 0;
    while (done < bytes.size() && !err) {
      ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) err = errno;
      else done += size_t(n);
    }
  };
  write_all(master, input);
  write_all(slave, output);
  for (int tries = 0; tries < 2000 && !err; tries++) {
    int in = 0, out = 0;
    ioctl(slave, FIONREAD, &in);
    ioctl(master, FIONREAD, &out);
    if (size_t(in) >= size_t(before_in) + input.size() && size_t(out) >= size_t(before_out) + output.size()) break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, nullptr);
  }
  if (ioctl(slave, kTcsets2, &t) != 0 && !err) err = errno;
  return err;
}

}  // namespace ckpt::img
