#include "sysv_ipc.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <thread>

namespace ckpt::writer {

using namespace ckpt::img;

namespace {

// glibc hides these behind _GNU_SOURCE spellings that differ by version.
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif

Expected<u64> ns_inode_of(const std::string &path) {
  struct stat st{};
  if (stat(path.c_str(), &st) < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  return static_cast<u64>(st.st_ino);
}

// An object of `kind` with its id and its ipc_perm's fields.
SysvIpcObject new_object(SysvIpcKind kind, int id, const struct ipc_perm &p) {
  SysvIpcObject o;
  SysvIpcRecord &r = o.record;
  r.kind = static_cast<u32>(kind);
  r.id = id;
  r.key = p.__key;
  r.mode = p.mode;
  r.uid = p.uid;
  r.gid = p.gid;
  r.cuid = p.cuid;
  r.cgid = p.cgid;
  return o;
}

// The segment's bytes through an attach of our own (read-only). It moves
// the segment's shm_lpid and attach times to the dumper's; a segment
// marked for removal (SHM_DEST) can still be attached by id on Linux.
Expected<SysvIpcObject> read_segment(int id, const struct shmid_ds &ds) {
  SysvIpcObject o = new_object(SysvIpcKind::Shm, id, ds.shm_perm);
  SysvIpcRecord &r = o.record;
  r.cpid = ds.shm_cpid;
  r.lpid = ds.shm_lpid;
  r.size = ds.shm_segsz;
  void *at = shmat(id, nullptr, SHM_RDONLY);
  if (at == reinterpret_cast<void *>(-1)) return make_error("SysV shm %d: shmat: %s", id, strerror(errno));
  const u8 *bytes = static_cast<const u8 *>(at);
  o.data.assign(bytes, bytes + ds.shm_segsz);
  shmdt(at);
  return o;
}

// Every object of one kind: *_INFO answers the highest slot index in use,
// *_STAT_ANY at a slot index the id of the object there, or -1 for a free
// slot (ipc/util.c ipc_obtain_object_idr); `read` turns (id, ds) into an
// object, `keep` filters by id.
template <class Ds, class Stat, class Read>
Expected<std::vector<SysvIpcObject>> read_every_slot(int max, const char *info_call, Stat stat, Read read,
                                                     const std::set<int> *keep = nullptr) {
  if (max < 0) return make_error("%s: %s", info_call, strerror(errno));
  std::vector<SysvIpcObject> out;
  for (int i = 0; i <= max; i++) {
    Ds ds{};
    int id = stat(i, &ds);
    if (id < 0) continue;  // a free slot
    if (keep && !keep->count(id)) continue;
    auto o = read(id, ds);
    if (!o) return o.error();
    out.push_back(o.take());
  }
  return out;
}

Expected<std::vector<SysvIpcObject>> read_segments(const std::set<int> *only) {
  struct shm_info info{};
  int max = shmctl(0, SHM_INFO, reinterpret_cast<struct shmid_ds *>(&info));
  return read_every_slot<struct shmid_ds>(
      max, "shmctl(SHM_INFO)", [](int i, struct shmid_ds *ds) { return shmctl(i, SHM_STAT_ANY, ds); }, read_segment,
      only);
}

Expected<SysvIpcObject> read_semaphore_set(int id, const struct semid_ds &ds) {
  SysvIpcObject o = new_object(SysvIpcKind::Sem, id, ds.sem_perm);
  SysvIpcRecord &r = o.record;
  r.count = static_cast<u32>(ds.sem_nsems);
  std::vector<unsigned short> values(ds.sem_nsems);
  if (semctl(id, 0, GETALL, values.data()) < 0)
    return make_error("SysV semaphore set %d: semctl(GETALL): %s", id, strerror(errno));
  o.data.resize(values.size() * 2);
  std::memcpy(o.data.data(), values.data(), o.data.size());
  return o;
}

Expected<std::vector<SysvIpcObject>> read_semaphore_sets() {
  struct seminfo info{};
  int max = semctl(0, 0, SEM_INFO, &info);
  return read_every_slot<struct semid_ds>(
      max, "semctl(SEM_INFO)", [](int i, struct semid_ds *ds) { return semctl(i, 0, SEM_STAT_ANY, ds); },
      read_semaphore_set);
}

// Messages are read with MSG_COPY (CONFIG_CHECKPOINT_RESTORE): a copy of
// the n-th message, which stays queued for the original.
Expected<SysvIpcObject> read_message_queue(int id, const struct msqid_ds &ds) {
  SysvIpcObject o = new_object(SysvIpcKind::Msg, id, ds.msg_perm);
  SysvIpcRecord &r = o.record;
  r.size = ds.msg_qbytes;
  r.count = static_cast<u32>(ds.msg_qnum);
  // One message is at most the whole queue's bytes.
  std::vector<u8> buf(sizeof(long) + ds.__msg_cbytes + 1);
  for (u32 n = 0; n < r.count; n++) {
    ssize_t len = msgrcv(id, buf.data(), buf.size() - sizeof(long), n, IPC_NOWAIT | MSG_COPY);
    if (len < 0) {
      if (errno == ENOSYS)
        return make_error("SysV message queue %d: reading its messages needs MSG_COPY, which this kernel lacks "
                          "(CONFIG_CHECKPOINT_RESTORE)", id);
      return make_error("SysV message queue %d: msgrcv(MSG_COPY) of message %u: %s", id, n, strerror(errno));
    }
    SysvMessageHeader h{};
    std::memcpy(&h.mtype, buf.data(), sizeof(long));
    h.length = static_cast<u64>(len);
    size_t at = o.data.size();
    o.data.resize(at + sizeof h + ((h.length + 7) & ~u64(7)), 0);
    std::memcpy(o.data.data() + at, &h, sizeof h);
    std::memcpy(o.data.data() + at + sizeof h, buf.data() + sizeof(long), h.length);
  }
  return o;
}

Expected<std::vector<SysvIpcObject>> read_message_queues() {
  struct msginfo info{};
  int max = msgctl(0, MSG_INFO, reinterpret_cast<struct msqid_ds *>(&info));
  return read_every_slot<struct msqid_ds>(
      max, "msgctl(MSG_INFO)", [](int i, struct msqid_ds *ds) { return msgctl(i, MSG_STAT_ANY, ds); },
      read_message_queue);
}

Expected<std::vector<SysvIpcObject>> read_objects(bool everything, const std::set<int> &attached) {
  auto shm = read_segments(everything ? nullptr : &attached);
  if (!shm) return shm.error();
  std::vector<SysvIpcObject> out = shm.take();
  if (!everything) return out;
  auto sem = read_semaphore_sets();
  if (!sem) return sem.error();
  auto msg = read_message_queues();
  if (!msg) return msg.error();
  for (auto *list : {&*sem, &*msg})
    for (SysvIpcObject &o : *list) out.push_back(std::move(o));
  return out;
}

}  // namespace

Expected<SysvIpcCapture> capture_sysv_ipc(const std::vector<const ProcessCapture *> &procs) {
  SysvIpcCapture cap;
  auto own = ns_inode_of("/proc/self/ns/ipc");
  if (!own) return own.error();
  std::set<int> attached;  // shmids: a SysV mapping's inode number is its shmid (ipc/shm.c newseg)
  for (size_t i = 0; i < procs.size(); i++) {
    auto ns = ns_inode_of("/proc/" + std::to_string(procs[i]->pid) + "/ns/ipc");
    if (!ns) return ns.error();
    if (i == 0) cap.ns_inode = *ns;
    else if (*ns != cap.ns_inode)
      return make_error("process %d is in another IPC namespace than process %d: a tree in several IPC namespaces "
                        "is not supported", procs[i]->pid, procs[0]->pid);
    for (const MapEntry &m : procs[i]->maps)
      if (m.path.rfind("/SYSV", 0) == 0) attached.insert(static_cast<int>(m.ino));
  }
  cap.own_namespace = cap.ns_inode != *own;
  if (!cap.own_namespace && attached.empty()) return cap;

  // The namespace's objects are seen from inside it: a thread of our own
  // joins it (setns of an IPC namespace changes only the calling thread)
  // and ends with the answer.
  Expected<std::vector<SysvIpcObject>> objects = std::vector<SysvIpcObject>{};
  pid_t root = procs[0]->pid;
  bool everything = cap.own_namespace;
  std::thread reader([&] {
    if (everything) {
      std::string path = "/proc/" + std::to_string(root) + "/ns/ipc";
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWIPC) < 0) {
        objects = make_error("joining the IPC namespace of process %d: %s", root, strerror(errno));
        if (fd >= 0) close(fd);
        return;
      }
      close(fd);
    }
    objects = read_objects(everything, attached);
  });
  reader.join();
  if (!objects) return objects.error();
  cap.objects = objects.take();

  // A segment marked for removal lives as long as something has it
  // attached; one that nothing in the tree has attached would be made
  // again and stay (or go at once): neither is what was there.
  for (const SysvIpcObject &o : cap.objects)
    if (static_cast<SysvIpcKind>(o.record.kind) == SysvIpcKind::Shm && (o.record.mode & kSysvShmDest) &&
        !attached.count(o.record.id))
      return make_error("SysV shm %d is marked for removal and attached only by processes outside the tree: "
                        "not supported", o.record.id);
  return cap;
}

void add_sysv_ipc_notes(const SysvIpcCapture &ipc, const ProcessCapture &pc, bool root, ImageNotes &notes) {
  std::set<u64> attached;
  for (const MapEntry &m : pc.maps)
    if (m.path.rfind("/SYSV", 0) == 0) attached.insert(m.ino);
  for (const SysvIpcObject &o : ipc.objects) {
    SysvIpcRecord r = o.record;
    if (root) {
      r.data = notes.sysv_ipc.add_blob(o.data);
    } else {
      if (static_cast<SysvIpcKind>(r.kind) != SysvIpcKind::Shm || !attached.count(u64(r.id))) continue;
      r.flags |= kSysvIpcInRoot;
    }
    notes.sysv_ipc.add(r);
  }
  if (!root) return;
  if (ipc.own_namespace) {
    IpcNamespaceRecord ns{};
    ns.flags = kIpcNsOwn;
    ns.ns_inode = ipc.ns_inode;
    notes.ipc_namespace.add(ns);
  }
}

}  // namespace ckpt::writer
