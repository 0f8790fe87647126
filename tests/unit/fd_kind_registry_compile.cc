// Compiled, not run (tests/CMakeLists.txt): a registry table with an entry
// per FdType builds; with one entry left out (-DCKPT_LEAVE_ONE_OUT), as
// when a kind is added to CKPT_FD_TYPES without its parts, it must not.
#include <ckpt/img/fd_kinds.h>

namespace {

struct Entry {
  ckpt::img::FdType type;
  int (*part)();
  constexpr bool complete() const { return part != nullptr; }
};

int part() { return 0; }

#define ENTRY(name, value) {ckpt::img::FdType::name, part},
constexpr std::array<Entry, ckpt::img::kFdTypeCount> kTable = {{
#ifdef CKPT_LEAVE_ONE_OUT
    // Every kind but the last: the new kind nobody wrote the parts of.
    ENTRY(Regular, 0) ENTRY(Directory, 1) ENTRY(PipeRead, 2) ENTRY(PipeWrite, 3) ENTRY(Fifo, 4)
    ENTRY(CharDevice, 5) ENTRY(BlockDevice, 6) ENTRY(Socket, 7) ENTRY(EventFd, 8) ENTRY(SignalFd, 9)
    ENTRY(TimerFd, 10) ENTRY(Epoll, 11) ENTRY(Inotify, 12) ENTRY(MemFd, 13)
#else
    CKPT_FD_TYPES(ENTRY)
#endif
}};
#undef ENTRY
static_assert(ckpt::img::covers_every_fd_type(kTable), "a kind lacks its entry");

}  // namespace

int main() { return kTable[0].part(); }
