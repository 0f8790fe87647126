// write_memory: the process's stored pages into the image, as a two-stage
// pipeline. One thread reads batches out of the frozen process (pread of
// /proc/PID/mem for long runs, process_vm_readv for many short ones) and
// marks the all-zero pages; the calling thread checksums and writes them.
// Both are mostly kernel copies, so on two cores the dump costs about the
// slower of the two instead of their sum.
#include "memory.h"
#include "snapshot.h"

#include <ckpt/img/fault_point.h>

#include <cerrno>
#include <csignal>
#include <condition_variable>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <sys/mman.h>
#include <sys/uio.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace ckpt::writer {

using namespace img;

// Four 2 MiB batches in flight keep both threads busy; the buffers are
// made present up front (below), and on this VM that first touch of fresh
// memory is paid per dump: 32 MiB of them (8 MiB batches) cost 6 % of a
// 1 GiB dump's CPU in clear_page, and 24 MiB of its peak RSS (decision
// 215). A batch is one huge page.
static constexpr size_t kBatch = 2u << 20;   // bytes per read
static constexpr size_t kSlots = 4;          // batches in flight
static constexpr size_t kMaxPieces = 1024;   // IOV_MAX

namespace {

struct Piece {
  u64 addr, len;
};

struct Batch {
  std::vector<Piece> pieces;
  size_t bytes = 0;
};

struct Slot {
  u8 *buffer = nullptr;
  std::vector<bool> zero;    // per page of the batch: all zero bytes
  size_t batch = SIZE_MAX;   // which batch it holds, SIZE_MAX = free
  bool filled = false;
  Status status;
};

std::vector<Batch> make_batches(const std::vector<VmaPlan> &plan) {
  std::vector<Batch> batches(1);
  for (const VmaPlan &v : plan)
    for (const PageRun &r : v.runs) {
      if (r.source != PageSource::Image) continue;
      for (u64 off = 0; off < r.length;) {
        Batch &b = batches.back();
        u64 n = std::min<u64>(r.length - off, kBatch - b.bytes);
        b.pieces.push_back({r.start + off, n});
        b.bytes += n;
        off += n;
        if (b.bytes == kBatch || b.pieces.size() == kMaxPieces) batches.emplace_back();
      }
    }
  if (batches.back().pieces.empty()) batches.pop_back();
  return batches;
}

// Pieces at least this long on average are read with one pread of
// /proc/PID/mem each: 3.1 GiB/s against process_vm_readv's 2.0 here
// (machine-facts.md). Many short pieces go in one process_vm_readv.
static constexpr size_t kPreadPiece = 256u << 10;

Status pread_piece(pid_t pid, int mem, const Piece &p, u8 *into, size_t from) {
  for (size_t k = from; k < p.len;) {
    ssize_t n = pread(mem, into + k, p.len - k, p.addr + k);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Unreadable even by force: a file page past the end of a
      // deleted file (SIGBUS in the process), a page the kernel hides.
      // The kernel's core dump writes zeros here; a restorable image
      // must not, or the process would come back with zeros it never
      // had.
      if (n < 0 && errno == ESRCH) return make_error("process %d exited during the dump", pid);
      return make_error("pid %d: cannot read the page at 0x%llx: %s", pid,
                        (unsigned long long)((p.addr + k) & ~(kPageSize - 1)), n < 0 ? strerror(errno) : "end of memory");
    }
    k += n;
  }
  return {};
}

bool page_is_zero(const u8 *p) {
  const u64 *w = reinterpret_cast<const u64 *>(p);
  // A page with data mostly shows it in its first word: no full scan.
  if (w[0]) return false;
  u64 acc = 0;
  for (size_t i = 0; i < kPageSize / 8; i++) acc |= w[i];
  return acc == 0;
}

// Marks which pages of buffer[from, to) (page offsets in the batch) are
// all zero bytes.
void mark_zero_range(const u8 *buffer, size_t from, size_t to, std::vector<bool> &zero) {
  for (size_t off = from; off < to; off += kPageSize) zero[off / kPageSize] = page_is_zero(buffer + off);
}

// Long pieces are read and checked for zero pages a slice at a time, while
// the slice is still in the CPU's cache: checked after a whole 8 MiB
// batch, every page's first word was a cache miss (14 % of a dump's CPU).
static constexpr size_t kZeroCheckSlice = 256u << 10;

// Reads the batch into buffer and marks its zero pages in `zero`.
Status read_batch(pid_t pid, int mem, const Batch &b, u8 *buffer, const PagesReadEarlier *early,
                  std::vector<bool> &zero) {
  zero.assign(b.bytes / kPageSize, false);
  bool any_early = false;
  for (const Piece &p : b.pieces) any_early = any_early || (early && early->find(p.addr, p.len));
  if (any_early || b.bytes / b.pieces.size() >= kPreadPiece) {
    // /proc/PID/mem reads with FOLL_FORCE: PROT_NONE and VM_IO pages too.
    size_t off = 0;
    for (const Piece &p : b.pieces) {
      if (const u8 *bytes = early ? early->find(p.addr, p.len) : nullptr) {
        std::memcpy(buffer + off, bytes, p.len);
        mark_zero_range(buffer, off, off + p.len, zero);
      } else {
        // Pieces are whole pages, and so are the slices.
        for (size_t k = 0; k < p.len; k += kZeroCheckSlice) {
          size_t n = std::min(kZeroCheckSlice, p.len - k);
          CKPT_TRY(pread_piece(pid, mem, {p.addr + k, n}, buffer + off + k, 0));
          mark_zero_range(buffer, off + k, off + k + n, zero);
        }
      }
      off += p.len;
    }
    return {};
  }
  std::vector<iovec> local(b.pieces.size()), remote(b.pieces.size());
  size_t off = 0;
  for (size_t i = 0; i < b.pieces.size(); i++) {
    local[i] = {buffer + off, b.pieces[i].len};
    remote[i] = {reinterpret_cast<void *>(b.pieces[i].addr), b.pieces[i].len};
    off += b.pieces[i].len;
  }
  ssize_t got = process_vm_readv(pid, local.data(), local.size(), remote.data(), remote.size(), 0);
  if (got < 0) {
    if (errno == ESRCH) return make_error("process %d exited during the dump", pid);
    got = 0;
  }
  if (static_cast<size_t>(got) == off) {
    mark_zero_range(buffer, 0, off, zero);
    return {};
  }
  // process_vm_readv stops at the first page it cannot read (PROT_NONE,
  // VM_IO); /proc/PID/mem reads with FOLL_FORCE and gets the rest.
  size_t pos = 0;
  for (const Piece &p : b.pieces) {
    if (pos + p.len > static_cast<size_t>(got)) {
      size_t have = static_cast<size_t>(got) > pos ? got - pos : 0;
      CKPT_TRY(pread_piece(pid, mem, p, buffer + pos, have));
    }
    pos += p.len;
  }
  mark_zero_range(buffer, 0, pos, zero);
  return {};
}

// Writes buf (whole pages) with runs of zero pages as holes.
Status emit_pages(ImageWriter &w, const u8 *buf, size_t len, const std::vector<bool> &zero) {
  size_t pages = len / kPageSize, i = 0;
  while (i < pages) {
    size_t j = i;
    while (j < pages && zero[j] == zero[i]) j++;
    if (zero[i])
      CKPT_TRY(w.write_zeros((j - i) * kPageSize));
    else
      CKPT_TRY(w.write({buf + i * kPageSize, (j - i) * kPageSize}));
    i = j;
  }
  return {};
}

}  // namespace

Status write_memory(pid_t pid, const std::vector<VmaPlan> &plan, ImageWriter &writer,
                    const std::function<void(u64)> &progress, const std::atomic<bool> *cancel,
                    const PagesReadEarlier *early) {
  std::vector<Batch> batches = make_batches(plan);
  if (batches.empty()) return {};
  int mem = open_mem(pid);
  if (mem < 0) return make_error("cannot open /proc/%d/mem: %s", pid, strerror(errno));
  size_t slots = std::min(kSlots, batches.size());
  // Page-aligned buffers, allocated once and reused: fresh pages cost a
  // fault each on this VM, reused ones do not.
  void *arena = mmap(nullptr, slots * kBatch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (arena == MAP_FAILED) {
    close(mem);
    return make_error("cannot allocate %zu MiB of buffers: %s", (slots * kBatch) >> 20, strerror(errno));
  }
  // Made present in one go, in huge pages where the kernel can: filled by
  // the reads, the first use of each 4 KiB page was a fault (5 us each on
  // this VM, 3 % of a 1 GiB dump's CPU). Advisory: without THP or
  // MADV_POPULATE_WRITE (Linux 5.14) the reads fault the pages in as before.
  madvise(arena, slots * kBatch, MADV_HUGEPAGE);
  madvise(arena, slots * kBatch, MADV_POPULATE_WRITE);
  std::vector<Slot> slot(slots);
  for (size_t i = 0; i < slots; i++) slot[i].buffer = static_cast<u8 *>(arena) + i * kBatch;

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  // The reader thread takes no signals: a SIGINT must interrupt the
  // calling thread, whose write may be what blocks (a full pipe).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // std::thread reports a failed clone (EAGAIN at RLIMIT_NPROC) by
  // throwing std::system_error; it must not leave the library.
  auto read_all = [&] {
    for (size_t b = 0; b < batches.size(); b++) {
      Slot &s = slot[b % slots];
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || s.batch == SIZE_MAX; });
        if (stop) return;
      }
      Status st = read_batch(pid, mem, batches[b], s.buffer, early, s.zero);
      {
        std::lock_guard lock(mu);
        s.batch = b;
        s.filled = true;
        s.status = st;
      }
      cv.notify_all();
      if (!st) return;
    }
  };
  std::thread reader;
  std::string thread_error;
  try {
    reader = std::thread(read_all);
  } catch (const std::system_error &e) {
    thread_error = e.what();
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!reader.joinable()) {
    munmap(arena, slots * kBatch);
    close(mem);
    return make_error("cannot start the thread that reads memory: %s", thread_error.c_str());
  }

  Status result;
  u64 done = 0, total = 0;
  int half_point = 0;
  for (const Batch &b : batches) total += b.bytes;
  for (size_t b = 0; b < batches.size() && result; b++) {
    Slot &s = slot[b % slots];
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return s.filled && s.batch == b; });
    }
    result = s.status;
    // A fault point as the batch that holds the middle byte is written.
    if (result && done + batches[b].bytes > total / 2 && !half_point++)
      result = img::fault_point("dump-memory-midway");
    if (result && cancel && cancel->load()) result = make_error("interrupted");
    if (result) result = emit_pages(writer, s.buffer, batches[b].bytes, s.zero);
    done += batches[b].bytes;
    {
      std::lock_guard lock(mu);
      s.filled = false;
      s.batch = SIZE_MAX;
      if (!result) stop = true;
    }
    cv.notify_all();
    if (result && progress) progress(done);
  }
  reader.join();
  munmap(arena, slots * kBatch);
  close(mem);
  return result;
}

}  // namespace ckpt::writer
