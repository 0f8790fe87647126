// dump_process: freeze, capture, plan, check, stream, release. The order
// matters for the target's sake: what restore could not bring back is
// refused before the output exists; the target is released as soon as its
// memory has been read, before the image is synced, and killed (--kill)
// only after the image is safely in place.
#include <ckpt/writer/dump.h>

#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>

#include <ckpt/img/restorable.h>

#include "build_notes.h"
#include "capture.h"
#include "freeze.h"
#include "memory.h"
#include "output.h"

namespace ckpt::writer {

using namespace img;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

Expected<DumpStats> dump_process(const DumpOptions &opt) {
  DumpStats stats;
  auto start = Clock::now();
  auto frozen = FrozenProcess::freeze(opt.pid, opt.cancel);
  if (!frozen) return frozen.error();
  auto frozen_at = Clock::now();

  auto children = list_children(opt.pid);
  if (!children) return children.error();
  if (!children->empty())
    return make_error("process %d has %zu child process(es) (e.g. %d); dumping process trees is not supported yet",
                      opt.pid, children->size(), children->front());

  auto pc = capture_process(*frozen);
  if (!pc) return pc.error();
  if (opt.store_tmpfs_files) {
    auto stored = read_stored_files(opt.pid, pc->fds, pc->maps);
    if (!stored) return stored.error();
    pc->stored_files = stored.take();
  }
  SegmentLayout layout = layout_segments(pc->memory);
  ImageNotes notes = build_notes(*pc, layout, new_identity("imgtool dump " CKPT_VERSION));
  // Refuse what restore would refuse before anything is written or killed
  // (the same support list restore, verify and info use): returning here
  // releases the target exactly as it was, and no file was ever created.
  auto captured = view_of_notes(notes);
  if (!captured) return captured.error();
  std::string lacks = unsupported_message(unsupported_state(captured->view));
  if (!lacks.empty()) {
    if (!opt.allow_unrestorable)
      return make_error("%s (nothing written; --allow-unrestorable writes an image for debugging only)",
                        lacks.c_str());
    notes.identity.records[0].flags &= ~u32(kIdentityRestorable);
  }
  // The notes just checked are the notes written (encoded once); only a
  // debug image changed its identity flags since.
  std::vector<Note> encoded = lacks.empty() ? std::move(captured->notes) : notes.encode();
  auto out = ImageOutput::open(opt.output);
  if (!out) return out.error();
  ImageWriter::Options wopt;
  wopt.direct_io = getenv("CKPT_BUFFERED_IO") == nullptr;
  wopt.cancel = opt.cancel;
  wopt.exec_launcher = opt.exec_launcher;
  // The exec form is a program its owner runs as ./FILE.
  if (!opt.exec_launcher.empty() && opt.output != "-" && fchmod(out->fd(), 0700) < 0)
    return make_error("chmod %s: %s", opt.output.c_str(), strerror(errno));
  auto writer = ImageWriter::create(std::move(encoded), layout.segments, wopt);
  if (!writer) return writer.error();
  stats.memory_bytes = stored_bytes(pc->memory);
  stats.image_bytes = writer->layout().total_size;

  auto cancelled = [&] { return opt.cancel && opt.cancel->load(); };
  // Every return below releases the process (FrozenProcess's destructor)
  // and removes the temporary file (ImageOutput's).
  auto interrupted = [&] {
    return make_error("interrupted; no image was written and process %d was let go as it was", opt.pid);
  };
  auto last_report = Clock::now();
  bool reported = false;
  auto progress = [&](u64 done) {
    if (!opt.show_progress) return;
    double elapsed = seconds_since(start);
    if (elapsed < 1.0 || seconds_since(last_report) < 0.2) return;
    last_report = Clock::now();
    reported = true;
    std::fprintf(stderr, "\rimgtool dump: %llu of %llu MiB (%.0f MiB/s)   ", (unsigned long long)(done >> 20),
                 (unsigned long long)(stats.memory_bytes >> 20), (done >> 20) / elapsed);
  };

  if (cancelled()) return interrupted();
  CKPT_TRY(writer->begin(out->fd()));
  Status s = write_memory(
      opt.pid, pc->memory, *writer, [&](u64 done) { progress(done); }, opt.cancel);
  if (reported) std::fprintf(stderr, "\n");
  if (cancelled()) return interrupted();
  if (!s) return s.error();
  CKPT_TRY(writer->finish());

  if (!opt.kill_after) {
    CKPT_TRY(frozen->release());
    stats.frozen_seconds = seconds_since(frozen_at);
  }
  if (cancelled()) return interrupted();
  CKPT_TRY(out->commit());
  if (opt.kill_after) {
    CKPT_TRY(frozen->kill());
    stats.frozen_seconds = seconds_since(frozen_at);
  }
  stats.total_seconds = seconds_since(start);
  return stats;
}

}  // namespace ckpt::writer
