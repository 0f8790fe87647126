// restore_image: check, clone the child with the original pid, set up its
// process state, lay out the restorer's arguments, and jump. The parent
// (imgtool) stays behind to report failures and, in the foreground, to wait
// for the restored process and pass on its exit status.
#include <ckpt/reader/restore.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/sched.h>
#include <map>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/img/model.h>
#include <ckpt/img/xstate.h>
#include <ckpt/reader/validate.h>

#include "../restorer/abi.h"
#include "arg_arena.h"
#include "handover.h"
#include "sigframe.h"
#include "lazy_pages.h"
#include "mapped_objects.h"
#include "preflight.h"
#include "privileges.h"
#include "process_setup.h"
#include "self_maps.h"
#include "stored_files.h"

extern "C" const unsigned char ckpt_restorer_blob[];
extern "C" const unsigned char ckpt_restorer_blob_end[];

namespace ckpt::reader {

using namespace img;

static constexpr u64 kPage = 4096;
static constexpr u64 kThreadStack = 64 * 1024;
static u64 page_up(u64 v) { return (v + kPage - 1) & ~(kPage - 1); }

// Bytes the argument area needs (generous: computed before layout).
static u64 args_size(const CkptView &v, const CoreView &core) {
  u64 n = sizeof(rs_args) + 4096;
  n += v.vmas.records.size() * sizeof(rs_vma) + v.ranges.records.size() * sizeof(rs_fill);
  n += 8 * sizeof(rs_move) + 64 * sizeof(int32_t) + v.pending.records.size() * sizeof(rs_signal);
  for (const CoreThread &t : core.threads) n += sizeof(rs_thread) + 1024 + std::max<u64>(t.xstate.size(), 512) + 4096;
  n += v.tasks.records[0].auxv.length + 64;
  for (const SeccompFilterRecord &f : v.seccomp_filters.records) n += sizeof(rs_filter) + f.program.length + 16;
  return page_up(n);
}

// A free range of `len` bytes that overlaps neither our mappings nor the
// image's: the restorer must survive the unmapping and not be mapped over.
static Expected<u64> find_free_range(const CkptView &v, const std::vector<SelfMapping> &self, u64 len) {
  std::vector<std::pair<u64, u64>> used;
  for (const SelfMapping &m : self) used.push_back({m.start, m.end});
  for (const VmaRecord &m : v.vmas.records) used.push_back({m.start, m.end});
  std::sort(used.begin(), used.end());
  u64 top = 0x7ff000000000ull;
  // Walk down from the top of the usual mmap area.
  for (auto it = used.rbegin(); it != used.rend(); ++it) {
    if (it->first >= top) {
      top = std::min(top, it->first);
      continue;
    }
    if (it->second <= top && top - it->second >= len + 2 * kPage) return (top - len - kPage) & ~(kPage - 1);
    top = std::min(top, it->first);
  }
  if (top > 0x10000000ull + len + kPage) return (top - len - kPage) & ~(kPage - 1);
  return make_error("no free address range of %llu bytes for the restorer", (unsigned long long)len);
}

static u32 map_flags_of(const VmaRecord &m) {
  u32 f = (m.flags & kVmaShared) ? MAP_SHARED : MAP_PRIVATE;
  if (m.flags & kVmaGrowsDown) f |= MAP_GROWSDOWN;
  // Private hugetlb memory is made anew by the restorer; shared hugetlb
  // memory is mapped from its object (prepare_shared_objects).
  if (static_cast<VmaKind>(m.kind) == VmaKind::Hugetlb && !(m.flags & kVmaShared)) f |= hugetlb_mmap_flags(m.page_size);
  return f;
}

// In the child: everything from the process state to the jump.
static Status become_image(const std::string &path, ImageReader &image, const CkptView &v, const CoreView &core,
                           int lazy_sock, int &status_fd, const int terminal[3]) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  prctl(PR_SET_PDEATHSIG, 0);
  const TaskRecord &task = v.tasks.records[0];

  int image_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (image_fd < 0) return make_error("cannot open %s: %s", path.c_str(), strerror(errno));
  // Files to map, one fd per distinct path.
  std::vector<int> file_fds(v.vmas.records.size(), -1);
  std::vector<std::pair<std::string, int>> opened;
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    if (static_cast<VmaKind>(m.kind) != VmaKind::File || (m.flags & kVmaDeletedFile)) continue;
    std::string p(v.vmas.str_or_empty(m.path));
    bool writable_shared = (m.flags & kVmaShared) && (m.prot & PROT_WRITE);
    std::string key = p + (writable_shared ? "\1" : "");
    auto it = std::find_if(opened.begin(), opened.end(), [&](auto &e) { return e.first == key; });
    if (it == opened.end()) {
      int fd = open(p.c_str(), (writable_shared ? O_RDWR : O_RDONLY) | O_CLOEXEC);
      if (fd < 0) return make_error("cannot open mapped file %s: %s", p.c_str(), strerror(errno));
      opened.push_back({key, fd});
      it = opened.end() - 1;
    }
    file_fds[i] = it->second;
  }

  // --lazy: the userfaultfd imgtool's helper serves (lazy_pages.h).
  int uffd = -1;
  if (lazy_sock >= 0) {
    auto made = make_lazy_uffd(lazy_sock);
    if (!made) return made.error();
    uffd = *made;
  }
  std::vector<int *> keep = {&image_fd, &status_fd};
  if (uffd >= 0) keep.push_back(&uffd);
  for (auto &o : opened) keep.push_back(&o.second);
  CKPT_TRY(restore_fds(v, keep, terminal));
  for (size_t i = 0; i < v.vmas.records.size(); i++)
    if (file_fds[i] >= 0) {
      // restore_fds renumbered our fds: look the new number up by path.
      const VmaRecord &m = v.vmas.records[i];
      std::string p(v.vmas.str_or_empty(m.path));
      std::string key = p + (((m.flags & kVmaShared) && (m.prot & PROT_WRITE)) ? "\1" : "");
      for (auto &o : opened)
        if (o.first == key) file_fds[i] = o.second;
    }
  // The objects behind shared and deleted-file mappings, made now that
  // every restored fd is in place.
  MappedObjects objects;
  CKPT_TRY(prepare_shared_objects(v, image, objects));
  auto exe_fd = open_executable(v, image, objects);
  if (!exe_fd) return exe_fd.error();
  objects.owned_fds.push_back(*exe_fd);
  for (size_t i = 0; i < v.vmas.records.size(); i++)
    if (objects.vma_fd[i] >= 0) file_fds[i] = objects.vma_fd[i];
  CKPT_TRY(restore_process_state(v));

  // Lay out the restorer region: blob | arguments | thread stacks | scratch.
  auto self = read_self_maps();
  if (!self) return self.error();
  u64 blob_len = static_cast<u64>(ckpt_restorer_blob_end - ckpt_restorer_blob);
  u64 move_len = 0;
  for (const SelfMapping &m : *self)
    if (m.name == "[vdso]" || m.name == "[vvar]" || m.name == "[vvar_vclock]") move_len += m.end - m.start;
  u64 region_len = page_up(blob_len) + args_size(v, core) + v.threads.records.size() * kThreadStack + move_len;
  auto at = find_free_range(v, *self, region_len);
  if (!at) return at.error();
  void *region = mmap(reinterpret_cast<void *>(*at), region_len, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (region == MAP_FAILED) return make_error("cannot map the restorer at 0x%llx: %s", (unsigned long long)*at, strerror(errno));
  u8 *base = static_cast<u8 *>(region);
  std::memcpy(base, ckpt_restorer_blob, blob_len);
  ArgArena arena{base + page_up(blob_len), args_size(v, core), 0};
  u8 *stacks = arena.base + arena.size;
  u64 scratch = reinterpret_cast<u64>(stacks + v.threads.records.size() * kThreadStack);

  rs_args *a = arena.alloc<rs_args>();
  if (!a) return make_error("restorer argument area too small");
  std::memset(a, 0, sizeof *a);
  a->magic = CKPT_RS_MAGIC;
  a->image_fd = image_fd;
  a->status_fd = status_fd;
  a->lazy = uffd >= 0;
  a->uffd = uffd;
  a->self_start = reinterpret_cast<u64>(base);
  a->self_end = reinterpret_cast<u64>(base) + region_len;
  a->move_scratch = scratch;
  a->stopped = (task.flags & kTaskStopped) != 0;

  // Memory.
  a->vma = arena.alloc<rs_vma>(v.vmas.records.size());
  a->fill = arena.alloc<rs_fill>(v.ranges.records.size());
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    auto kind = static_cast<VmaKind>(m.kind);
    if (kind == VmaKind::Vdso || kind == VmaKind::Vvar || kind == VmaKind::VvarVclock || kind == VmaKind::Vsyscall)
      continue;
    rs_vma &out = a->vma[a->nvma++];
    out.start = m.start;
    out.end = m.end;
    out.pgoff = m.pgoff;
    out.prot = m.prot;
    out.map_flags = map_flags_of(m);
    out.fd = file_fds[i];
    out.first_fill = a->nfill;
    out.madvise = ((m.flags & kVmaDontDump) ? RS_MADV_DONTDUMP : 0) | ((m.flags & kVmaHugePage) ? RS_MADV_HUGEPAGE : 0) |
                  ((m.flags & kVmaNoHugePage) ? RS_MADV_NOHUGEPAGE : 0) |
                  ((m.flags & kVmaDontFork) ? RS_MADV_DONTFORK : 0) | ((m.flags & kVmaWipeOnFork) ? RS_MADV_WIPEONFORK : 0);
    out.lock = (m.flags & kVmaLocked) ? (RS_LOCK | ((m.flags & kVmaLockOnFault) ? RS_LOCK_ONFAULT : 0)) : 0;
    out.uffd = uffd >= 0 && served_lazily(v, m);
    for (u32 k = 0; k < m.range_count && !objects.prefilled[i] && !out.uffd; k++) {
      const PageRangeRecord &r = v.ranges.records[m.first_range + k];
      if (static_cast<PageSource>(r.source) != PageSource::Image) continue;
      a->fill[a->nfill++] = {r.start, r.length, stored_range(image, r).file_offset};
    }
    out.nfill = a->nfill - out.first_fill;
  }
  // The kernel's vdso area, moved to where the image had it.
  a->move = arena.alloc<rs_move>(4);
  for (const SelfMapping &m : *self) {
    VmaKind k;
    if (m.name == "[vdso]") k = VmaKind::Vdso;
    else if (m.name == "[vvar]") k = VmaKind::Vvar;
    else if (m.name == "[vvar_vclock]") k = VmaKind::VvarVclock;
    else continue;
    for (const VmaRecord &r : v.vmas.records)
      if (static_cast<VmaKind>(r.kind) == k) a->move[a->nmove++] = {m.start, r.start, m.end - m.start};
  }

  // mm fields, with the saved auxv.
  auto auxv = v.tasks.blob(task.auxv);
  if (!auxv) return auxv.error();
  u8 *auxv_copy = arena.alloc<u8>(auxv->size() + 16, 8);
  std::memcpy(auxv_copy, auxv->data(), auxv->size());
  a->mm = {task.start_code, task.end_code, task.start_data, task.end_data, task.start_brk, task.brk, task.start_stack,
           task.arg_start, task.arg_end, task.env_start, task.env_end, reinterpret_cast<u64>(auxv_copy),
           static_cast<u32>(auxv->size()), static_cast<u32>(*exe_fd)};

  a->close_fds = arena.alloc<int32_t>(opened.size() + objects.owned_fds.size() + 1);
  for (auto &o : opened) a->close_fds[a->nclose++] = o.second;
  for (int fd : objects.owned_fds) a->close_fds[a->nclose++] = fd;
  if (uffd >= 0) a->close_fds[a->nclose++] = uffd;  // the helper has its own

  // Threads, the leader first.
  a->thread = arena.alloc<rs_thread>(v.threads.records.size());
  std::vector<const ThreadRecord *> order;
  for (const ThreadRecord &t : v.threads.records)
    if (t.tid == task.pid) order.insert(order.begin(), &t);
    else order.push_back(&t);
  if (order.empty() || order[0]->tid != task.pid) return make_error("the image has no thread for its main thread");
  for (size_t i = 0; i < order.size(); i++) {
    const ThreadRecord &tr = *order[i];
    const CoreThread *ct = nullptr;
    for (const CoreThread &c : core.threads)
      if (c.prstatus.pr_pid == tr.tid) ct = &c;
    if (!ct) return make_error("thread %d has no registers", tr.tid);
    rs_thread &t = a->thread[a->nthread++];
    std::memset(&t, 0, sizeof t);
    t.tid = tr.tid;
    t.fs_base = ct->prstatus.pr_reg.fs_base;
    t.gs_base = ct->prstatus.pr_reg.gs_base;
    t.robust_list = tr.robust_list;
    t.robust_list_len = tr.robust_list_len;
    t.clear_child_tid = tr.clear_child_tid;
    t.rseq_addr = tr.rseq_addr;
    t.rseq_len = tr.rseq_len;
    t.rseq_sig = tr.rseq_sig;
    t.stack_top = reinterpret_cast<u64>(stacks + (i + 1) * kThreadStack);
    std::string name(v.threads.str_or_empty(tr.comm));
    std::strncpy(t.comm, name.c_str(), sizeof t.comm - 1);
    CKPT_TRY(build_sigframe(arena, *ct, tr, t));
  }
  a->signal = arena.alloc<rs_signal>(v.pending.records.size() + 1);
  for (const PendingSignalRecord &p : v.pending.records) {
    rs_signal &s = a->signal[a->nsignal++];
    s.tid = p.tid;
    s.signo = static_cast<i32>(p.signo);
    std::memcpy(s.siginfo, p.siginfo, sizeof s.siginfo);
  }
  // Credentials: set by each thread in the restorer, after everything that
  // needs privilege.
  auto groups = v.tasks.blob(task.groups);
  if (!groups) return groups.error();
  a->ngroups = static_cast<u32>(groups->size() / 4);
  a->groups = arena.alloc<u32>(a->ngroups + 1);
  if (!a->groups) return make_error("restorer argument area too small");
  std::memcpy(a->groups, groups->data(), a->ngroups * 4);
  for (int i = 0; i < 3; i++) {
    a->uid[i] = task.uid[i];
    a->gid[i] = task.gid[i];
  }
  uid_t ids[3];
  gid_t gids[3];
  getresuid(&ids[0], &ids[1], &ids[2]);
  getresgid(&gids[0], &gids[1], &gids[2]);
  a->set_creds = ids[0] != task.uid[0] || ids[1] != task.uid[1] || ids[2] != task.uid[2] ||
                 gids[0] != task.gid[0] || gids[1] != task.gid[1] || gids[2] != task.gid[2] || getuid() == 0;
  a->dumpable = (task.flags & kTaskDumpable) != 0;
  // Privileges, per thread, set right after the ids (restorer.c).
  auto own = own_privileges();
  if (!own) return own.error();
  a->cap_permitted_now = own->permitted;
  for (size_t i = 0; i < order.size(); i++)
    CKPT_TRY(set_thread_privileges(arena, v, *order[i], *own, a->set_creds != 0, a->thread[i]));
  if (arena.used > arena.size) return make_error("restorer argument area overflowed");

  // glibc registered an rseq area in our TLS; once the restorer unmaps it
  // the kernel would fault updating it on the next return to user mode
  // (SIGSEGV, SI_KERNEL). Unregister it: the restorer registers the image's.
  if (__rseq_size > 0) {
    u64 area = reinterpret_cast<u64>(__builtin_thread_pointer()) + __rseq_offset;
    // glibc 2.36 registers 32 bytes but publishes __rseq_size 20.
    if (syscall(SYS_rseq, area, 32, 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG) < 0)
      syscall(SYS_rseq, area, __rseq_size, 1, RSEQ_SIG);
  }
  // The jump: onto the leader's restorer stack, into the blob.
  u64 entry = reinterpret_cast<u64>(base);
  u64 stack = a->thread[0].stack_top;
  __asm__ volatile("mov %0, %%rsp\n"
                   "mov %1, %%rdi\n"
                   "jmp *%2\n"
                   :
                   : "r"(stack), "r"(a), "r"(entry)
                   : "memory");
  __builtin_unreachable();
}

static const char *stage_name(int stage) {
  switch (stage) {
    case RS_UNMAP: return "unmapping the old memory";
    case RS_MOVE: return "moving the vdso";
    case RS_MAP: return "mapping memory";
    case RS_FILL: return "reading memory from the image";
    case RS_PROTECT: return "setting memory protection";
    case RS_MM: return "setting the mm fields (PR_SET_MM_MAP)";
    case RS_CLONE: return "creating threads";
    case RS_SIGNAL: return "queueing pending signals";
    case RS_CREDS: return "setting the user and group ids";
    case RS_TLS: return "setting the thread pointer (ARCH_SET_FS)";
    case RS_ROBUST_LIST: return "setting the robust futex list";
    case RS_RSEQ: return "registering rseq";
    case RS_CAPS: return "setting capabilities";
    case RS_SECUREBITS: return "setting securebits";
    case RS_NO_NEW_PRIVS: return "setting no_new_privs";
    case RS_LOCK_MEMORY: return "locking memory (mlock2)";
    case RS_LAZY: return "registering memory for lazy restore (userfaultfd)";
    default: return "starting";
  }
}

static pid_t g_child = 0;
// A restored process in our own process group already gets the terminal's
// signals; forwarding them too would deliver each twice.
static void forward_signal(int sig) {
  if (g_child > 0 && (getpgid(g_child) != getpgrp() || (sig != SIGINT && sig != SIGQUIT && sig != SIGWINCH)))
    kill(g_child, sig);
}

Expected<int> restore_image(const RestoreOptions &opt) {
  CKPT_TRY(check_restore_privilege());
  // Eager restore reads every stored byte anyway and checks them first;
  // lazy restore must not read them at all. The same checks as verify's,
  // so both say the same thing.
  HereNowOptions here_now;
  here_now.reopen_changed_files = opt.reopen_changed_files;
  Restorability restorability = check_restorable(opt.image, !opt.lazy, here_now);
  if (!restorability.restorable()) return Error(restorability.message);
  auto image = ImageReader::open(opt.image);
  if (!image) return image.error();
  auto view = decode_ckpt(*image);
  if (!view) return view.error();
  auto core = decode_core(*image);
  if (!core) return core.error();
  // Stored files that are gone come back before the process that needs
  // them, and go again if it never runs.
  auto recreated = recreate_missing_files(*view);
  if (!recreated) return recreated.error();
  struct RemoveUnlessRunning {
    std::vector<std::string> paths;
    bool running = false;
    ~RemoveUnlessRunning() {
      if (!running) remove_files(paths);
    }
  } recreated_files{recreated.take()};
  const TaskRecord &task = view->tasks.records[0];

  int status[2];
  if (pipe2(status, O_CLOEXEC) < 0) return make_error("pipe: %s", strerror(errno));
  int terminal[3];
  for (int i = 0; i < 3; i++) terminal[i] = isatty(i) ? i : -1;
  // Without a terminal, fds that were the dumping terminal get our own
  // standard streams, whatever they are.
  for (int i = 0; i < 3; i++)
    if (terminal[i] < 0 && fcntl(i, F_GETFD) >= 0) terminal[i] = i;

  LazyHelper lazy;
  int lazy_sock = -1;  // the child's end of the channel to the helper
  if (opt.lazy) {
    auto sock = lazy.open_channel();
    if (!sock) return sock.error();
    lazy_sock = *sock;
  }

  pid_t want = task.pid;
  struct clone_args ca = {};
  ca.exit_signal = SIGCHLD;
  ca.set_tid = reinterpret_cast<u64>(&want);
  ca.set_tid_size = 1;
  long pid = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0) {
    int e = errno;
    close(status[0]);
    close(status[1]);
    if (lazy_sock >= 0) close(lazy_sock);
    if (e == EEXIST) return make_error("pid %d is in use", want);
    if (e == EPERM) return not_permitted_to_restore();
    return make_error("cannot create a process with pid %d: %s", want, strerror(e));
  }
  if (pid == 0) {
    close(status[0]);
    lazy.close_parent_end();
    // status[1] by reference: restore_fds() moves it out of the way.
    Status s = become_image(opt.image, *image, *view, *core, lazy_sock, status[1], terminal);
    std::string msg = s.error().message() + "\n";
    (void)!write(status[1], msg.data(), msg.size());
    _exit(127);
  }
  close(status[1]);
  g_child = static_cast<pid_t>(pid);
  // The lazy-pages helper, forked after status[1] is closed so that it
  // does not hold the verdict pipe open.
  if (lazy_sock >= 0) {
    close(lazy_sock);
    Status started = lazy.start(*image, *view);
    if (!started) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      waitpid(static_cast<pid_t>(pid), nullptr, 0);
      return started.error();
    }
  }
  // Wait for the restorer's verdict: EOF means the process is running.
  std::string verdict;
  char buf[512];
  for (;;) {
    ssize_t n = read(status[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    verdict.append(buf, n);
  }
  close(status[0]);
  if (verdict.size() == 1 + sizeof(rs_handover) && verdict[0] == RS_OK) {
    rs_handover where;
    std::memcpy(&where, verdict.data() + 1, sizeof where);
    std::string warning;
    CKPT_TRY(hand_over(handover_of(*view, static_cast<pid_t>(pid), where), &warning));
    if (!warning.empty()) std::fprintf(stderr, "imgtool restore: warning: %s\n", warning.c_str());
    recreated_files.running = true;
    verdict.clear();
    CKPT_TRY(lazy.go());
  } else if (verdict.empty()) {
    int st = 0;
    waitpid(static_cast<pid_t>(pid), &st, 0);
    if (WIFSIGNALED(st))
      return make_error("the restorer died of signal %d before the process was running", WTERMSIG(st));
    return make_error("the restorer exited (status %d) before the process was running", WEXITSTATUS(st));
  } else {
    int st;
    waitpid(static_cast<pid_t>(pid), &st, 0);
    // A stage byte and an errno byte; when two threads fail at once, the
    // first report is the one.
    if (verdict.size() >= 2 && verdict.size() % 2 == 0 && static_cast<unsigned char>(verdict[0]) < 32)
      return make_error("restore failed while %s: %s", stage_name(verdict[0]),
                        strerror(static_cast<unsigned char>(verdict[1])));
    while (!verdict.empty() && verdict.back() == '\n') verdict.pop_back();
    return Error(verdict);
  }
  if (!opt.pidfile.empty()) {
    std::string text = std::to_string(pid) + "\n";
    int fd = open(opt.pidfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      return make_error("cannot write the pid file %s: %s", opt.pidfile.c_str(), strerror(errno));
    close(fd);
  }
  if (opt.detach) {
    lazy.detach();  // it outlives us, serving the process
    return 0;
  }

  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH}) sigaction(sig, &sa, nullptr);
  int st = 0;
  while (waitpid(static_cast<pid_t>(pid), &st, 0) < 0)
    if (errno != EINTR) return make_error("waitpid: %s", strerror(errno));
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

}  // namespace ckpt::reader
