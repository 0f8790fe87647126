#include "sysv_ipc.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

namespace ckpt::reader {

using namespace img;

namespace {

bool own_namespace(const CkptView &v) {
  return !v.ipc_namespace.records.empty() && (v.ipc_namespace.records[0].flags & kIpcNsOwn);
}

// Per SysvIpcKind: how errors name it, and the file that sets the id the
// next object of the kind gets (ipc/ipc_sysctl.c).
struct SysvKindInfo {
  const char *name;
  const char *next_id_file;
};

SysvKindInfo kind_info(u32 kind) {
  switch (static_cast<SysvIpcKind>(kind)) {
    case SysvIpcKind::Shm: return {"shm segment", "/proc/sys/kernel/shm_next_id"};
    case SysvIpcKind::Sem: return {"semaphore set", "/proc/sys/kernel/sem_next_id"};
    case SysvIpcKind::Msg: return {"message queue", "/proc/sys/kernel/msg_next_id"};
  }
  return {"IPC object", ""};
}

const char *kind_name(u32 kind) { return kind_info(kind).name; }
const char *next_id_file(u32 kind) { return kind_info(kind).next_id_file; }

// The object with `r`'s id now, if any: its key, size and creator.
struct Present {
  bool exists = false;
  i32 key = 0;
  u64 size = 0;
  i32 cpid = 0;
};

Present present(const SysvIpcRecord &r) {
  Present p;
  switch (static_cast<SysvIpcKind>(r.kind)) {
    case SysvIpcKind::Shm: {
      struct shmid_ds ds{};
      if (shmctl(r.id, IPC_STAT, &ds) < 0) return p;
      return {true, ds.shm_perm.__key, ds.shm_segsz, ds.shm_cpid};
    }
    case SysvIpcKind::Sem: {
      struct semid_ds ds{};
      if (semctl(r.id, 0, IPC_STAT, &ds) < 0) return p;
      return {true, ds.sem_perm.__key, ds.sem_nsems, 0};
    }
    case SysvIpcKind::Msg: {
      struct msqid_ds ds{};
      if (msgctl(r.id, IPC_STAT, &ds) < 0) return p;
      return {true, ds.msg_perm.__key, ds.msg_qbytes, 0};
    }
  }
  return p;
}

// The same object that was dumped, still there (the dump let it live:
// only the processes were killed). A segment marked for removal went with
// its last attach, so one with its id now is another.
bool is_itself(const SysvIpcRecord &r, const Present &p) {
  return p.exists && static_cast<SysvIpcKind>(r.kind) == SysvIpcKind::Shm && !(r.mode & kSysvShmDest) &&
         p.key == r.key && p.size == r.size && p.cpid == r.cpid;
}

int find_key(u32 kind, i32 key) {
  switch (static_cast<SysvIpcKind>(kind)) {
    case SysvIpcKind::Shm: return shmget(key, 0, 0);
    case SysvIpcKind::Sem: return semget(key, 0, 0);
    case SysvIpcKind::Msg: return msgget(key, 0);
  }
  return -1;
}

Status write_text(const char *path, const std::string &text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error("%s: %s", path, strerror(errno));
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) return make_error("writing %s: %s", path, strerror(err));
  return {};
}

// The kernel hands out the id written to <kind>_next_id to the next object
// of that kind made in this namespace (CONFIG_CHECKPOINT_RESTORE, ipc_idr_alloc),
// then forgets it (-1).
Expected<int> make_object(const SysvIpcRecord &r) {
  CKPT_TRY(write_text(next_id_file(r.kind), std::to_string(r.id)));
  key_t key = r.key;
  int flags = IPC_CREAT | IPC_EXCL | static_cast<int>(r.mode & 0777);
  int id = -1;
  switch (static_cast<SysvIpcKind>(r.kind)) {
    case SysvIpcKind::Shm: id = shmget(key, r.size, flags); break;
    case SysvIpcKind::Sem: id = semget(key, static_cast<int>(r.count), flags); break;
    case SysvIpcKind::Msg: id = msgget(key, flags); break;
  }
  int err = errno;
  if (id < 0 || id != r.id) {
    (void)write_text(next_id_file(r.kind), "-1");
    if (id >= 0) {
      // Someone else took the id between our two steps.
      if (r.kind == u32(SysvIpcKind::Shm)) shmctl(id, IPC_RMID, nullptr);
      if (r.kind == u32(SysvIpcKind::Sem)) semctl(id, 0, IPC_RMID);
      if (r.kind == u32(SysvIpcKind::Msg)) msgctl(id, IPC_RMID, nullptr);
      return make_error("SysV %s %d: made with id %d instead", kind_name(r.kind), r.id, id);
    }
    return make_error("SysV %s %d (key 0x%x): %s", kind_name(r.kind), r.id, unsigned(r.key), strerror(err));
  }
  return id;
}

struct ipc_perm &perm_of(struct shmid_ds &ds) { return ds.shm_perm; }
struct ipc_perm &perm_of(struct semid_ds &ds) { return ds.sem_perm; }
struct ipc_perm &perm_of(struct msqid_ds &ds) { return ds.msg_perm; }

// Owner and permissions (IPC_SET); the creator stays whoever made it here.
template <typename Ds>
void set_perm(Ds &ds, const SysvIpcRecord &r) {
  struct ipc_perm &perm = perm_of(ds);
  perm.uid = r.uid;
  perm.gid = r.gid;
  perm.mode = r.mode & 0777;
}

Status fill_segment(const CkptView &v, const SysvIpcRecord &r) {
  std::span<const u8> bytes = *v.sysv_ipc.blob(r.data);  // checked by decode_ckpt
  if (!bytes.empty()) {
    void *at = shmat(r.id, nullptr, 0);
    if (at == reinterpret_cast<void *>(-1)) return make_error("SysV shm %d: shmat: %s", r.id, strerror(errno));
    std::memcpy(at, bytes.data(), bytes.size());
    shmdt(at);
  }
  struct shmid_ds ds{};
  if (shmctl(r.id, IPC_STAT, &ds) < 0) return make_error("SysV shm %d: IPC_STAT: %s", r.id, strerror(errno));
  set_perm(ds, r);
  if (shmctl(r.id, IPC_SET, &ds) < 0) return make_error("SysV shm %d: IPC_SET: %s", r.id, strerror(errno));
  if ((r.mode & kSysvShmLocked) && shmctl(r.id, SHM_LOCK, nullptr) < 0)
    return make_error("SysV shm %d: SHM_LOCK: %s", r.id, strerror(errno));
  return {};
}

Status fill_semaphores(const CkptView &v, const SysvIpcRecord &r) {
  std::span<const u8> bytes = *v.sysv_ipc.blob(r.data);
  std::vector<unsigned short> values(r.count);
  std::memcpy(values.data(), bytes.data(), bytes.size());
  if (semctl(r.id, 0, SETALL, values.data()) < 0)
    return make_error("SysV semaphore set %d: SETALL: %s", r.id, strerror(errno));
  struct semid_ds ds{};
  if (semctl(r.id, 0, IPC_STAT, &ds) < 0) return make_error("SysV semaphore set %d: IPC_STAT: %s", r.id, strerror(errno));
  set_perm(ds, r);
  if (semctl(r.id, 0, IPC_SET, &ds) < 0) return make_error("SysV semaphore set %d: IPC_SET: %s", r.id, strerror(errno));
  return {};
}

Status fill_queue(const CkptView &v, const SysvIpcRecord &r) {
  struct msqid_ds ds{};
  if (msgctl(r.id, IPC_STAT, &ds) < 0) return make_error("SysV message queue %d: IPC_STAT: %s", r.id, strerror(errno));
  set_perm(ds, r);
  // Raising msg_qbytes past msgmnb needs CAP_SYS_RESOURCE.
  ds.msg_qbytes = r.size;
  if (msgctl(r.id, IPC_SET, &ds) < 0)
    return make_error("SysV message queue %d: setting its limit to %llu bytes: %s", r.id, (unsigned long long)r.size,
                      strerror(errno));
  std::span<const u8> bytes = *v.sysv_ipc.blob(r.data);
  std::vector<u8> buf;
  size_t at = 0;
  for (u32 m = 0; m < r.count; m++) {
    SysvMessageHeader h{};
    std::memcpy(&h, bytes.data() + at, sizeof h);
    at += sizeof h;
    buf.assign(sizeof(long) + h.length, 0);
    long type = static_cast<long>(h.mtype);
    std::memcpy(buf.data(), &type, sizeof type);
    std::memcpy(buf.data() + sizeof type, bytes.data() + at, h.length);
    at += (h.length + 7) & ~u64(7);
    if (msgsnd(r.id, buf.data(), h.length, IPC_NOWAIT) < 0)
      return make_error("SysV message queue %d: message %u of %u: %s", r.id, m + 1, r.count, strerror(errno));
  }
  return {};
}

}  // namespace

Status check_sysv_ipc_here(const CkptView &v) {
  if (own_namespace(v)) return {};  // a new namespace: every id is free
  for (const SysvIpcRecord &r : v.sysv_ipc.records) {
    if (r.flags & kSysvIpcInRoot) continue;  // the root's record says
    Present p = present(r);
    if (is_itself(r, p)) continue;
    if (p.exists)
      return make_error("SysV %s id %d is taken on this host by another object (key 0x%x; the image's has key 0x%x)",
                        kind_name(r.kind), r.id, unsigned(p.key), unsigned(r.key));
    if (r.key != IPC_PRIVATE && !(r.mode & kSysvShmDest)) {
      int other = find_key(r.kind, r.key);
      if (other >= 0)
        return make_error("SysV %s key 0x%x is taken on this host by id %d (the image's has id %d)",
                          kind_name(r.kind), unsigned(r.key), other, r.id);
    }
  }
  return {};
}

SysvIpcObjects::SysvIpcObjects(SysvIpcObjects &&o) noexcept
    : made_(std::move(o.made_)), remove_later_(std::move(o.remove_later_)), running_(o.running_) {
  o.made_.clear();
  o.running_ = true;
}

SysvIpcObjects::~SysvIpcObjects() {
  if (running_) return;
  for (const Made &m : made_) {
    if (m.kind == u32(SysvIpcKind::Shm)) shmctl(m.id, IPC_RMID, nullptr);
    if (m.kind == u32(SysvIpcKind::Sem)) semctl(m.id, 0, IPC_RMID);
    if (m.kind == u32(SysvIpcKind::Msg)) msgctl(m.id, IPC_RMID, nullptr);
  }
}

void SysvIpcObjects::started() {
  running_ = true;
  // Marked for removal again (the key becomes IPC_PRIVATE, ipc/shm.c
  // do_shm_rmid); the segment lives on while attached.
  for (int id : remove_later_) shmctl(id, IPC_RMID, nullptr);
}

Expected<SysvIpcObjects> make_sysv_ipc(const CkptView &v) {
  SysvIpcObjects out;
  bool own = own_namespace(v);
  if (own && unshare(CLONE_NEWIPC) < 0)
    return make_error("a new IPC namespace for the image's own (unshare): %s", strerror(errno));
  for (const SysvIpcRecord &r : v.sysv_ipc.records) {
    if (r.flags & kSysvIpcInRoot) continue;
    if (!own && is_itself(r, present(r))) continue;  // outlived the dumped tree: used as it is
    auto id = make_object(r);
    if (!id) return id.error();
    if (!own) out.made_.push_back({r.kind, *id});
    switch (static_cast<SysvIpcKind>(r.kind)) {
      case SysvIpcKind::Shm:
        CKPT_TRY(fill_segment(v, r));
        if (r.mode & kSysvShmDest) out.remove_later_.push_back(r.id);
        break;
      case SysvIpcKind::Sem: CKPT_TRY(fill_semaphores(v, r)); break;
      case SysvIpcKind::Msg: CKPT_TRY(fill_queue(v, r)); break;
    }
  }
  return out;
}

}  // namespace ckpt::reader
