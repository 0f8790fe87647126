#include "privileges.h"

#include "../restorer/abi.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

static constexpr int kCapSetpcap = 8;
static constexpr u32 kSecbitKeepCaps = 1u << 4, kSecbitNoCapAmbientRaise = 1u << 6;
static constexpr u32 kSecureAllLocks = 0xaa;  // the *_LOCKED bits (linux/securebits.h)

static const char *const kCapNames[] = {
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
    "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
    "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
    "checkpoint_restore"};

// "cap_sys_admin, cap_net_raw" for the bits of `caps`; past three names,
// "and N more" (one line stays readable when root's whole set is missing).
static std::string cap_list(u64 caps) {
  std::string out;
  int named = 0, more = 0;
  for (int c = 0; c < 64; c++) {
    if (!(caps & (u64(1) << c))) continue;
    if (named == 3) {
      more++;
      continue;
    }
    if (named++) out += ", ";
    out += c < int(std::size(kCapNames)) ? std::string("cap_") + kCapNames[c] : "cap_" + std::to_string(c);
  }
  if (more) out += " and " + std::to_string(more) + " more";
  return out;
}

static bool parse_hex(const std::string &text, const char *key, u64 &out) {
  std::string k = std::string("\n") + key + ":";
  size_t at = text.find(k);
  if (at == std::string::npos) return false;
  out = std::strtoull(text.c_str() + at + k.size(), nullptr, 16);
  return true;
}

Expected<OwnPrivileges> own_privileges() {
  int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("/proc/thread-self/status: %s", strerror(errno));
  std::string text = "\n";
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  close(fd);
  OwnPrivileges own;
  u64 nnp = 0, seccomp = 0;
  if (!parse_hex(text, "CapEff", own.effective) || !parse_hex(text, "CapPrm", own.permitted) ||
      !parse_hex(text, "CapInh", own.inheritable) || !parse_hex(text, "CapBnd", own.bounding) ||
      !parse_hex(text, "CapAmb", own.ambient) || !parse_hex(text, "NoNewPrivs", nnp))
    return make_error("/proc/thread-self/status lacks the capability lines");
  parse_hex(text, "Seccomp", seccomp);  // absent without CONFIG_SECCOMP: mode 0
  own.no_new_privs = nnp != 0;
  own.seccomp_mode = static_cast<u32>(seccomp);
  int bits = prctl(PR_GET_SECUREBITS);
  if (bits < 0) return make_error("PR_GET_SECUREBITS: %s", strerror(errno));
  own.securebits = static_cast<u32>(bits);
  return own;
}

// The five capability sets of a TaskRecord or a ThreadRecord.
template <class Record>
static void take_capabilities(ThreadPrivileges &p, const Record &r) {
  p.effective = r.cap_effective;
  p.permitted = r.cap_permitted;
  p.inheritable = r.cap_inheritable;
  p.bounding = r.cap_bounding;
  p.ambient = r.cap_ambient;
}

ThreadPrivileges thread_privileges(const CkptView &v, const ThreadRecord &t, const OwnPrivileges &own) {
  ThreadPrivileges p;
  if (!(t.flags & kThreadPrivileges)) {
    const TaskRecord &task = v.tasks.records[0];
    take_capabilities(p, task);
    p.securebits = own.securebits;
    return p;
  }
  take_capabilities(p, t);
  p.securebits = t.securebits;
  p.no_new_privs = (t.flags & kThreadNoNewPrivs) != 0;
  p.seccomp_mode = t.seccomp_mode;
  for (const SeccompFilterRecord &f : v.seccomp_filters.records)
    if (f.tid == t.tid) p.filters.push_back(&f);
  std::sort(p.filters.begin(), p.filters.end(),
            [](const SeccompFilterRecord *a, const SeccompFilterRecord *b) { return a->position < b->position; });
  return p;
}

// Installs a thread's chain, oldest first, in a throwaway child, exactly as
// the restorer will: the kernel checks each program at install time, and an
// earlier filter may refuse the seccomp() call of a later one. The restorer
// installs them after success is reported, so this is where they fail.
static Status try_filters(const CkptView &v, pid_t tid, const std::vector<const SeccompFilterRecord *> &filters) {
  std::vector<std::vector<u8>> progs;
  for (const SeccompFilterRecord *f : filters) {
    auto prog = v.seccomp_filters.blob(f->program);
    if (!prog) return prog.error();
    progs.emplace_back(prog->begin(), prog->end());
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) < 0) return make_error("pipe: %s", strerror(errno));
  pid_t child = fork();
  if (child < 0) {
    close(report[0]);
    close(report[1]);
    return make_error("fork: %s", strerror(errno));
  }
  if (child == 0) {
    // Only raw syscalls from here: the parent may have other threads.
    close(report[0]);
    int result[2] = {-1, 0};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) result[1] = errno;
    for (size_t i = 0; i < progs.size() && !result[1]; i++) {
      struct {
        u16 len;
        u16 pad[3];
        const u8 *filter;
      } fprog{static_cast<u16>(progs[i].size() / 8), {}, progs[i].data()};
      if (syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, filters[i]->flags, &fprog) < 0) {
        result[0] = static_cast<int>(i);
        result[1] = errno;
      }
    }
    // write() itself may be filtered now: an empty pipe says success only
    // together with exit status 0.
    if (result[1]) (void)!write(report[1], result, sizeof result);
    _exit(result[1] ? 1 : 0);
  }
  close(report[1]);
  int result[2] = {-1, 0};
  ssize_t got = read(report[0], result, sizeof result);
  close(report[0]);
  int st = 0;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  if (got == sizeof result && result[0] >= 0)
    return make_error("thread %d: seccomp filter %d (of %zu) cannot be installed again: %s", tid, result[0],
                      filters.size(), strerror(result[1]));
  if (got == sizeof result) return make_error("no_new_privs: %s", strerror(result[1]));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return make_error("thread %d: its seccomp filters cannot be installed again (a trial install %s %d)", tid,
                      WIFSIGNALED(st) ? "died of signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  return {};
}

Status check_privileges_here(const CkptView &v) {
  auto own = own_privileges();
  if (!own) return own.error();
  if (own->seccomp_mode)
    return make_error("imgtool runs under seccomp (mode %u), which the restored process would inherit", own->seccomp_mode);
  std::vector<std::vector<std::vector<u8>>> tried;
  for (const ThreadRecord &t : v.threads.records) {
    ThreadPrivileges p = thread_privileges(v, t, *own);
    const int tid = t.tid;
    if (u64 missing = p.permitted & ~own->permitted)
      return make_error("not permitted: thread %d held capabilities this restore does not have (%s)", tid,
                        cap_list(missing).c_str());
    if (u64 missing = p.bounding & ~own->bounding)
      return make_error("not permitted: thread %d's capability bounding set has %s, which this restore's lacks", tid,
                        cap_list(missing).c_str());
    if (u64 missing = p.inheritable & ~(own->inheritable | (own->permitted & own->bounding)))
      return make_error("not permitted: thread %d's inheritable capabilities %s cannot be set by this restore", tid,
                        cap_list(missing).c_str());
    if (p.ambient && (own->securebits & kSecbitNoCapAmbientRaise))
      return make_error("thread %d had ambient capabilities, and this restore runs with SECBIT_NO_CAP_AMBIENT_RAISE", tid);
    bool setpcap = own->permitted & (u64(1) << kCapSetpcap);
    if ((own->bounding & ~p.bounding) && !setpcap)
      return make_error("thread %d's capability bounding set lacks %s; dropping them needs CAP_SETPCAP", tid,
                        cap_list(own->bounding & ~p.bounding).c_str());
    u32 changed = (own->securebits ^ p.securebits) & ~kSecbitKeepCaps;
    u32 locked = own->securebits & kSecureAllLocks;
    if (changed && (!setpcap || (changed & (locked | (locked >> 1)))))
      return make_error("thread %d's securebits 0x%x cannot be set from 0x%x here", tid, p.securebits, own->securebits);
    if (own->no_new_privs && !p.no_new_privs)
      return make_error("imgtool runs with no_new_privs, which thread %d did not have and would inherit", tid);
    if (p.seccomp_mode != static_cast<u32>(SeccompMode::Filter)) continue;
    std::vector<std::vector<u8>> chain;
    for (const SeccompFilterRecord *f : p.filters) {
      auto prog = v.seccomp_filters.blob(f->program);
      if (!prog) return prog.error();
      chain.emplace_back(prog->begin(), prog->end());
      chain.back().push_back(static_cast<u8>(f->flags));
    }
    // Threads usually share one chain: try each distinct chain once.
    if (std::find(tried.begin(), tried.end(), chain) != tried.end()) continue;
    CKPT_TRY(try_filters(v, tid, p.filters));
    tried.push_back(std::move(chain));
  }
  return {};
}

// The thread's privileges as the restorer sets them (preflight checked
// that they can be set): capability sets and securebits when they differ
// from ours or the ids change, no_new_privs, and the seccomp filters.
Status set_thread_privileges(ArgArena &arena, const CkptView &v, const ThreadRecord &tr,
                                    const OwnPrivileges &own, bool set_creds, rs_thread &t) {
  ThreadPrivileges p = thread_privileges(v, tr, own);
  bool caps_differ = p.effective != own.effective || p.permitted != own.permitted || p.inheritable != own.inheritable ||
                     p.bounding != own.bounding || p.ambient != own.ambient || p.securebits != own.securebits;
  t.priv = (set_creds || caps_differ ? RS_PRIV_CAPS : 0u) | (p.no_new_privs && !own.no_new_privs ? RS_PRIV_NO_NEW_PRIVS : 0u);
  t.securebits = p.securebits;
  t.cap_effective = p.effective;
  t.cap_permitted = p.permitted;
  t.cap_inheritable = p.inheritable;
  t.cap_ambient = p.ambient;
  t.cap_bounding_drop = own.bounding & ~p.bounding;
  t.seccomp_mode = p.seccomp_mode == static_cast<u32>(SeccompMode::Strict)   ? RS_SECCOMP_STRICT
                   : p.seccomp_mode == static_cast<u32>(SeccompMode::Filter) ? RS_SECCOMP_FILTER
                                                                             : 0u;
  if (p.filters.empty()) return {};
  t.filter = arena.alloc<rs_filter>(p.filters.size());
  if (!t.filter) return make_error("restorer argument area too small");
  for (const SeccompFilterRecord *f : p.filters) {
    auto prog = v.seccomp_filters.blob(f->program);
    if (!prog) return prog.error();
    u8 *insns = arena.alloc<u8>(prog->size(), 8);
    if (!insns) return make_error("restorer argument area too small");
    std::memcpy(insns, prog->data(), prog->size());
    rs_filter &out = t.filter[t.nfilter++];
    out = {};
    out.len = static_cast<u16>(prog->size() / 8);
    out.insns = reinterpret_cast<u64>(insns);
    out.flags = f->flags;
  }
  return {};
}

}  // namespace ckpt::reader
