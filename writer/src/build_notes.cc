#include "build_notes.h"

#include <cstring>
#include <ctime>
#include <sys/random.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace ckpt::writer {

using namespace img;

static constexpr long kErestartsys = 512, kErestartnointr = 513, kErestartnohand = 514,
                      kErestartRestartblock = 516;
static constexpr u64 kNrRestartSyscall = 219;

ImageIdentity new_identity(const std::string &writer) {
  ImageIdentity id;
  if (getrandom(id.image_id, sizeof id.image_id, 0) != sizeof id.image_id) {
    // Never fails for 16 bytes once the pool is ready; fall back to time.
    u64 t = static_cast<u64>(time(nullptr)) ^ static_cast<u64>(getpid());
    std::memcpy(id.image_id, &t, sizeof t);
  }
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  id.created_sec = ts.tv_sec;
  id.created_nsec = ts.tv_nsec;
  id.writer = writer;
  return id;
}

static CoreTimeval ticks_to_timeval(u64 ticks) {
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return {static_cast<i64>(ticks / hz), static_cast<i64>((ticks % hz) * 1000000 / hz)};
}

ImageNotes build_notes(const ProcessCapture &pc, const SegmentLayout &layout, const ImageIdentity &ident) {
  ImageNotes n;
  const pid_t pid = pc.pid;

  PrPsInfo ps{};
  ps.pr_state = pc.stat.state;
  // The kernel's pr_sname: the state letter; pr_state its index in "RSDTZW".
  static const char states[] = "RSDTZW";
  const char *where = std::strchr(states, pc.stat.state);
  ps.pr_state = where ? static_cast<char>(where - states) : 0;
  ps.pr_sname = pc.stat.state;
  ps.pr_zomb = pc.stat.state == 'Z';
  ps.pr_nice = static_cast<char>(pc.stat.nice);
  ps.pr_flag = pc.stat.flags;
  ps.pr_uid = pc.status.uid[0];
  ps.pr_gid = pc.status.gid[0];
  ps.pr_pid = pid;
  ps.pr_ppid = pc.stat.ppid;
  ps.pr_pgrp = pc.stat.pgrp;
  ps.pr_sid = pc.stat.session;
  std::strncpy(ps.pr_fname, pc.comm.c_str(), sizeof ps.pr_fname - 1);
  std::string args = pc.cmdline.substr(0, sizeof ps.pr_psargs - 1);
  for (char &c : args)
    if (c == '\0') c = ' ';
  while (!args.empty() && args.back() == ' ') args.pop_back();
  std::memcpy(ps.pr_psargs, args.data(), args.size());
  n.psinfo = ps;

  for (size_t i = 0; i < pc.threads.size(); i++) {
    const ThreadCapture &t = pc.threads[i];
    ImageNotes::Thread th;
    PrStatus &s = th.prstatus;
    s.pr_sigpend = pc.thread_status[i].sig_pnd;
    s.pr_sighold = t.sigmask;
    s.pr_pid = t.tid;
    s.pr_ppid = pc.stat.ppid;
    s.pr_pgrp = pc.stat.pgrp;
    s.pr_sid = pc.stat.session;
    s.pr_utime = ticks_to_timeval(t.utime);
    s.pr_stime = ticks_to_timeval(t.stime);
    if (i == 0) {
      s.pr_cutime = ticks_to_timeval(static_cast<u64>(pc.stat.cutime));
      s.pr_cstime = ticks_to_timeval(static_cast<u64>(pc.stat.cstime));
    }
    s.pr_reg = t.regs;  // exactly as ptrace reported them, as gcore writes
    s.pr_fpvalid = 1;
    th.fpregs = t.fpregs;
    th.xstate = t.xstate;
    n.threads.push_back(std::move(th));
  }
  n.siginfo.assign(kSiginfoSize, 0);  // no signal caused this dump
  n.auxv = pc.auxv;

  // NT_FILE: file mappings, the main executable's first (lldb takes entry
  // 0 as the executable).
  std::vector<FileMapping> exe_maps, other_maps;
  for (const VmaPlan &v : pc.memory) {
    if (v.kind != VmaKind::File) continue;
    FileMapping f{v.map.start, v.map.end, v.map.offset, v.map.path};
    (v.path == pc.exe ? exe_maps : other_maps).push_back(f);
  }
  n.files = exe_maps;
  n.files.insert(n.files.end(), other_maps.begin(), other_maps.end());

  // --- CKPT notes ---
  IdentityRecord idr{};
  std::memcpy(idr.image_id, ident.image_id, 16);
  idr.created_sec = ident.created_sec;
  idr.created_nsec = ident.created_nsec;
  idr.format_minor = kFormatMinor;
  idr.checkpoint_id = ident.checkpoint_id;
  u64 xcr0 = 0;
  if (!pc.threads.empty() && pc.threads[0].xstate.size() >= kXstateXcr0Offset + 8)
    std::memcpy(&xcr0, pc.threads[0].xstate.data() + kXstateXcr0Offset, 8);
  idr.xsave_features = xcr0;
  idr.xsave_size = pc.threads.empty() ? 0 : static_cast<u32>(pc.threads[0].xstate.size());
  idr.page_size = static_cast<u32>(sysconf(_SC_PAGESIZE));
  idr.flags = kIdentityRestorable;
  idr.root_pid = pid;
  idr.process_count = 1;
  utsname uts{};
  uname(&uts);
  idr.kernel_release = n.identity.add_string(uts.release);
  idr.hostname = n.identity.add_string(uts.nodename);
  idr.writer = n.identity.add_string(ident.writer);
  n.identity.add(idr);

  TaskRecord task{};
  task.pid = pid;
  task.ppid = pc.stat.ppid;
  task.pgid = pc.stat.pgrp;
  task.sid = pc.stat.session;
  std::memcpy(task.uid, pc.status.uid, sizeof task.uid);
  std::memcpy(task.gid, pc.status.gid, sizeof task.gid);
  task.cap_inheritable = pc.status.cap_inh;
  task.cap_permitted = pc.status.cap_prm;
  task.cap_effective = pc.status.cap_eff;
  task.cap_bounding = pc.status.cap_bnd;
  task.cap_ambient = pc.status.cap_amb;
  task.umask = pc.status.umask;
  task.personality = pc.personality;
  task.nice = static_cast<i32>(pc.stat.nice);
  task.flags = (pc.stopped ? u32(kTaskStopped) : 0u) | (pc.stat.session == pid ? u32(kTaskSessionLeader) : 0u) |
               (pc.stat.pgrp == pid ? u32(kTaskGroupLeader) : 0u);
  task.exit_signal = pc.stat.exit_signal;
  task.thread_count = static_cast<u32>(pc.threads.size());
  task.start_code = pc.stat.start_code;
  task.end_code = pc.stat.end_code;
  task.start_data = pc.stat.start_data;
  task.end_data = pc.stat.end_data;
  task.start_brk = pc.stat.start_brk;
  task.brk = pc.brk;
  task.start_stack = pc.stat.start_stack;
  task.arg_start = pc.stat.arg_start;
  task.arg_end = pc.stat.arg_end;
  task.env_start = pc.stat.env_start;
  task.env_end = pc.stat.env_end;
  task.comm = n.tasks.add_string(pc.comm);
  task.cwd = n.tasks.add_string(pc.cwd);
  task.root = n.tasks.add_string(pc.root);
  task.exe = n.tasks.add_string(pc.exe);
  task.groups = n.tasks.add_blob({reinterpret_cast<const u8 *>(pc.status.groups.data()), pc.status.groups.size() * 4});
  task.auxv = n.tasks.add_blob({reinterpret_cast<const u8 *>(pc.auxv.data()), pc.auxv.size() * 8});
  n.tasks.add(task);

  for (size_t i = 0; i < pc.threads.size(); i++) {
    const ThreadCapture &t = pc.threads[i];
    const ThreadExtra &x = pc.thread_extra[i];
    ThreadRecord r{};
    r.tid = t.tid;
    r.pid = pid;
    r.fs_base = t.regs.fs_base;
    r.gs_base = t.regs.gs_base;
    r.sigmask = t.sigmask;
    r.altstack_sp = x.altstack_sp;
    r.altstack_size = x.altstack_size;
    r.altstack_flags = x.altstack_flags;
    r.rseq_addr = t.rseq_addr;
    r.rseq_len = t.rseq_len;
    r.rseq_sig = t.rseq_sig;
    r.robust_list = t.robust_list;
    r.robust_list_len = t.robust_list_len;
    r.clear_child_tid = x.clear_child_tid;
    r.flags = t.tid == pid ? u32(kThreadLeader) : 0u;
    r.syscall_nr = static_cast<i64>(t.regs.orig_rax);
    r.syscall_result = static_cast<i64>(t.regs.rax);
    // What the kernel would have done on the way back to user mode.
    if (r.syscall_nr >= 0) {
      long err = -static_cast<long>(t.regs.rax);
      if (err == kErestartsys || err == kErestartnointr || err == kErestartnohand) {
        r.restart = static_cast<u32>(SyscallRestart::Restart);
        r.restart_rax = t.regs.orig_rax;
      } else if (err == kErestartRestartblock) {
        r.restart = static_cast<u32>(SyscallRestart::RestartBlock);
        r.restart_rax = kNrRestartSyscall;
      }
      if (r.restart) {
        r.flags |= kThreadInSyscall;
        r.restart_rip = t.regs.rip - 2;
      }
    }
    r.comm = n.thread_records.add_string(t.name);
    n.thread_records.add(r);
    for (const auto &si : t.pending) {
      PendingSignalRecord p{};
      p.pid = pid;
      p.tid = t.tid;
      std::memcpy(p.siginfo, si.data(), std::min(si.size(), sizeof p.siginfo));
      std::memcpy(&p.signo, si.data(), 4);
      n.pending.add(p);
    }
  }
  for (const auto &si : pc.shared_pending) {
    PendingSignalRecord p{};
    p.pid = pid;
    std::memcpy(p.siginfo, si.data(), std::min(si.size(), sizeof p.siginfo));
    std::memcpy(&p.signo, si.data(), 4);
    n.pending.add(p);
  }

  for (size_t vi = 0; vi < pc.memory.size(); vi++) {
    const VmaPlan &v = pc.memory[vi];
    VmaRecord r{};
    r.start = v.map.start;
    r.end = v.map.end;
    r.pgoff = v.map.offset;
    r.prot = v.map.prot;
    r.flags = v.flags;
    r.kind = static_cast<u32>(v.kind);
    r.pid = pid;
    r.dev = (u64(v.map.dev_major) << 8) | v.map.dev_minor;
    r.ino = v.map.ino;
    r.file_size = v.file_size;
    r.file_mtime_ns = v.file_mtime_ns;
    r.path = n.vmas.add_string(v.path);
    r.build_id = n.vmas.add_blob(v.build_id);
    r.first_range = static_cast<u32>(n.ranges.records.size());
    r.range_count = static_cast<u32>(v.runs.size());
    n.vmas.add(r);
    for (size_t ri = 0; ri < v.runs.size(); ri++) {
      const PageRun &run = v.runs[ri];
      n.ranges.add({run.start, run.length, static_cast<u32>(run.source), layout.run_segment[vi][ri]});
    }
  }

  for (const FdInfo &f : pc.fds.fds) {
    FdRecord r = f.record;
    r.pid = pid;
    r.path = n.fds.add_string(f.path);
    r.content = n.fds.add_blob(f.content);
    n.fds.add(r);
  }
  for (const PipeInfo &p : pc.fds.pipes) n.pipes.add({p.pipe_id, p.capacity, p.ino, n.pipes.add_blob(p.data)});
  for (const SigActionRecord &s : pc.sigactions) n.sigactions.add(s);
  for (const TimerRecord &t : pc.timers) n.timers.add(t);
  for (const RlimitRecord &r : pc.rlimits) n.rlimits.add(r);
  return n;
}

}  // namespace ckpt::writer
