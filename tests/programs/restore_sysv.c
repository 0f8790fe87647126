/* Restore test: System V IPC (issue 13).
 *   usage: restore_sysv GOFILE WORKDIR MODE
 * MODE "ns": in an IPC namespace of its own (unshare(CLONE_NEWIPC)), so
 * that every object goes with the killed process and only the restore can
 * bring it back:
 *   - segment A (key 0x5eed0001, 3 pages + 100 bytes, mode 0640, SHM_LOCK)
 *     attached read-write, with a pattern written through the attach;
 *   - segment B (key 0x5eed0002, one page) not attached, with a pattern;
 *   - segment C (IPC_PRIVATE) attached read-only and marked for removal
 *     (IPC_RMID: SHM_DEST, alive while attached);
 *   - semaphore set (key 0x5eed0003) of 3 with values 5, 0, 42;
 *   - message queue (key 0x5eed0004, mode 0600) holding three messages of
 *     types 1, 7, 2 (the last 3000 bytes).
 *   The ids are made not the namespace's first (shm_next_id etc.), as the
 *   program keeps them in variables: after the restore each id, key, size,
 *   mode, content, value and message is as it was, each attach at the same
 *   address with the same protection, and the objects still work.
 * MODE "host": in the host's namespace, one IPC_PRIVATE segment attached
 * and marked for removal (so the dump's --kill removes it): it comes back
 * with the same id, bytes and address. Prints "SHMID id".
 * MODE "tree": in an IPC namespace of its own, a segment attached by the
 * process and by its child (a tree: the child's image refers to the
 * root's record): after the restore a write by one shows in the other. */
#include "rt_prog.h"

#include <sched.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define A_SIZE (3 * 4096 + 100)
#define B_SIZE 4096
#define C_SIZE 8192
#define BIG_MSG 3000

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

struct msg {
  long mtype;
  char text[BIG_MSG];
};

static unsigned char pattern(int seed, size_t i) { return (unsigned char)(seed * 31 + i * 7 + (i >> 9)); }

static void fill(unsigned char *p, size_t n, int seed) {
  for (size_t i = 0; i < n; i++) p[i] = pattern(seed, i);
}

static int same(const unsigned char *p, size_t n, int seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern(seed, i)) return 0;
  return 1;
}

static void set_next_id(const char *kind, int id) {
  char path[64];
  snprintf(path, sizeof path, "/proc/sys/kernel/%s_next_id", kind);
  FILE *f = fopen(path, "w");
  if (!f || fprintf(f, "%d", id) < 0 || fclose(f) != 0) rt_die("write %s", path);
}

/* Whether [addr, addr+len) is one SysV mapping with protection `perms`
 * ("rw-s", "r--s") in /proc/self/maps. */
static int mapped_as(void *addr, size_t len, const char *perms) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  unsigned long want = (unsigned long)addr, want_end = want + ((len + 4095) & ~4095ul);
  while (f && fgets(line, sizeof line, f)) {
    unsigned long s, e;
    char p[8];
    if (sscanf(line, "%lx-%lx %7s", &s, &e, p) != 3) continue;
    if (s == want && e == want_end && strcmp(p, perms) == 0 && strstr(line, "/SYSV")) found = 1;
  }
  if (f) fclose(f);
  return found;
}

static void check_segment(const char *name, int id, key_t key, size_t size, unsigned mode, int nattch, int dest) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) < 0) {
    rt_fail("%s: shm id %d is gone: %s", name, id, strerror(errno));
    return;
  }
  RT_CHECK(ds.shm_perm.__key == key, "%s: key 0x%x, expected 0x%x", name, ds.shm_perm.__key, key);
  RT_CHECK(ds.shm_segsz == size, "%s: size %zu, expected %zu", name, (size_t)ds.shm_segsz, size);
  RT_CHECK((ds.shm_perm.mode & 0777) == mode, "%s: mode %o, expected %o", name, ds.shm_perm.mode & 0777, mode);
  RT_CHECK((int)ds.shm_nattch == nattch, "%s: %d attaches, expected %d", name, (int)ds.shm_nattch, nattch);
  RT_CHECK(!!(ds.shm_perm.mode & SHM_DEST) == dest, "%s: SHM_DEST %s", name, dest ? "lost" : "appeared");
}

static int host_mode(char **argv) {
  int c = shmget(IPC_PRIVATE, C_SIZE, IPC_CREAT | 0600);
  if (c < 0) rt_die("shmget");
  unsigned char *pc = shmat(c, NULL, 0);
  if (pc == (void *)-1) rt_die("shmat");
  fill(pc, C_SIZE, 9);
  if (shmctl(c, IPC_RMID, NULL) < 0) rt_die("IPC_RMID");
  printf("SHMID %d\n", c);
  rt_ready();
  rt_wait_go(argv[1]);

  check_segment("host segment", c, IPC_PRIVATE, C_SIZE, 0600, 1, 1);
  RT_CHECK(mapped_as(pc, C_SIZE, "rw-s"), "host segment: not attached read-write at %p", (void *)pc);
  RT_CHECK(same(pc, C_SIZE, 9), "host segment: content differs");
  pc[5] = 77;
  RT_CHECK(shmdt(pc) == 0, "host segment: shmdt: %s", strerror(errno));
  /* The last detach of a segment marked for removal removes it. */
  RT_CHECK(shmctl(c, IPC_STAT, &(struct shmid_ds){0}) < 0, "host segment: still there after its last detach");
  return rt_finish();
}

static int tree_mode(char **argv) {
  if (unshare(CLONE_NEWIPC) < 0) rt_die("unshare(CLONE_NEWIPC)");
  set_next_id("shm", 99);
  int id = shmget(0x5eed0010, B_SIZE, IPC_CREAT | 0600);
  if (id != 99) rt_die("shmget gave %d", id);
  volatile unsigned char *p = shmat(id, NULL, 0);
  if (p == (void *)-1) rt_die("shmat");
  p[0] = 1;
  int ready[2];
  if (pipe(ready) < 0) rt_die("pipe");
  pid_t child = fork();
  if (child < 0) rt_die("fork");
  if (child == 0) {
    volatile unsigned char *q = shmat(id, NULL, 0);
    if (q == (void *)-1) _exit(3);
    q[1] = 2;
    if (write(ready[1], "x", 1) != 1) _exit(4);
    rt_wait_go(argv[1]);
    /* After the restore: the parent's write comes through the segment. */
    for (int i = 0; i < 2000 && q[2] != 3; i++) rt_sleep_ms(5);
    _exit(q[2] == 3 && q[0] == 1 && q[1] == 2 ? 0 : 5);
  }
  char c;
  if (read(ready[0], &c, 1) != 1) rt_die("child setup");
  printf("CHILD %d\n", (int)child);
  rt_ready();
  rt_wait_go(argv[1]);
  RT_CHECK(p[1] == 2, "tree: the child's write before the dump is not in the segment");
  p[2] = 3;
  int status = 0;
  RT_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "tree: the child did not see the segment shared (status 0x%x)", status);
  struct shmid_ds ds;
  RT_CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 1, "tree: %d attaches left, expected 1",
           (int)ds.shm_nattch);
  return rt_finish();
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  if (strcmp(argv[3], "host") == 0) return host_mode(argv);
  if (strcmp(argv[3], "tree") == 0) return tree_mode(argv);
  if (unshare(CLONE_NEWIPC) < 0) rt_die("unshare(CLONE_NEWIPC)");

  set_next_id("shm", 4711);
  int a = shmget(0x5eed0001, A_SIZE, IPC_CREAT | IPC_EXCL | 0640);
  int b = shmget(0x5eed0002, B_SIZE, IPC_CREAT | IPC_EXCL | 0600);
  int c = shmget(IPC_PRIVATE, C_SIZE, IPC_CREAT | 0600);
  if (a < 0 || b < 0 || c < 0) rt_die("shmget");
  if (a != 4711) rt_die("shm_next_id gave %d", a);
  unsigned char *pa = shmat(a, NULL, 0);
  unsigned char *pb = shmat(b, NULL, 0);
  if (pa == (void *)-1 || pb == (void *)-1) rt_die("shmat");
  fill(pa, A_SIZE, 1);
  fill(pb, B_SIZE, 2);
  if (shmdt(pb) < 0) rt_die("shmdt");
  unsigned char *pc = shmat(c, NULL, 0);
  if (pc == (void *)-1) rt_die("shmat c");
  fill(pc, C_SIZE, 3);
  if (shmdt(pc) < 0) rt_die("shmdt c");
  const unsigned char *rc = shmat(c, NULL, SHM_RDONLY);
  if (rc == (void *)-1) rt_die("shmat c read-only");
  if (shmctl(c, IPC_RMID, NULL) < 0) rt_die("IPC_RMID");
  if (shmctl(a, SHM_LOCK, NULL) < 0) rt_die("SHM_LOCK");

  set_next_id("sem", 815);
  int s = semget(0x5eed0003, 3, IPC_CREAT | IPC_EXCL | 0660);
  if (s < 0) rt_die("semget");
  unsigned short values[3] = {5, 0, 42};
  if (semctl(s, 0, SETALL, (union semun){.array = values}) < 0) rt_die("SETALL");

  set_next_id("msg", 1234);
  int q = msgget(0x5eed0004, IPC_CREAT | IPC_EXCL | 0600);
  if (q < 0) rt_die("msgget");
  static struct msg m;
  m.mtype = 1;
  strcpy(m.text, "hello");
  if (msgsnd(q, &m, 5, 0) < 0) rt_die("msgsnd 1");
  m.mtype = 7;
  strcpy(m.text, "world!!");
  if (msgsnd(q, &m, 7, 0) < 0) rt_die("msgsnd 2");
  m.mtype = 2;
  fill((unsigned char *)m.text, BIG_MSG, 4);
  if (msgsnd(q, &m, BIG_MSG, 0) < 0) rt_die("msgsnd 3");
  printf("SHMID %d\nSEMID %d\nMSQID %d\n", a, s, q);
  rt_ready();
  rt_wait_go(argv[1]);

  /* Segments: ids, keys, sizes, modes, flags, attaches, bytes. */
  check_segment("segment A", a, 0x5eed0001, A_SIZE, 0640, 1, 0);
  check_segment("segment B", b, 0x5eed0002, B_SIZE, 0600, 0, 0);
  check_segment("segment C", c, IPC_PRIVATE, C_SIZE, 0600, 1, 1);
  struct shmid_ds ds;
  RT_CHECK(shmctl(a, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_LOCKED), "segment A: SHM_LOCKED lost");
  RT_CHECK(shmget(0x5eed0001, 0, 0) == a, "segment A: its key finds %d, not %d", shmget(0x5eed0001, 0, 0), a);
  RT_CHECK(mapped_as(pa, A_SIZE, "rw-s"), "segment A: not attached read-write at %p", (void *)pa);
  RT_CHECK(mapped_as((void *)rc, C_SIZE, "r--s"), "segment C: not attached read-only at %p", (const void *)rc);
  RT_CHECK(same(pa, A_SIZE, 1), "segment A: content differs");
  RT_CHECK(same(rc, C_SIZE, 3), "segment C: content differs");
  pb = shmat(b, NULL, SHM_RDONLY);
  RT_CHECK(pb != (void *)-1 && same(pb, B_SIZE, 2), "segment B: content differs (or shmat failed)");
  /* Still shared memory of the segment: a write shows through another attach. */
  pa[10] = 0xab;
  unsigned char *again = shmat(a, NULL, 0);
  RT_CHECK(again != (void *)-1 && again[10] == 0xab, "segment A: a second attach does not see the first's write");
  RT_CHECK(shmdt(pa) == 0 && shmdt(again) == 0, "segment A: shmdt: %s", strerror(errno));
  RT_CHECK(shmdt(rc) == 0, "segment C: shmdt: %s", strerror(errno));
  RT_CHECK(shmctl(c, IPC_STAT, &ds) < 0, "segment C: still there after its last detach");

  /* Semaphores: values, and they still count. */
  unsigned short now[3] = {0, 0, 0};
  RT_CHECK(semctl(s, 0, GETALL, (union semun){.array = now}) == 0, "semaphores: GETALL: %s", strerror(errno));
  RT_CHECK(now[0] == 5 && now[1] == 0 && now[2] == 42, "semaphores: values %u %u %u, expected 5 0 42", now[0], now[1],
           now[2]);
  struct semid_ds sds;
  RT_CHECK(semctl(s, 0, IPC_STAT, (union semun){.buf = &sds}) == 0 && (sds.sem_perm.mode & 0777) == 0660 &&
               sds.sem_perm.__key == 0x5eed0003,
           "semaphores: mode or key differ");
  struct sembuf down = {0, -2, IPC_NOWAIT};
  RT_CHECK(semop(s, &down, 1) == 0 && semctl(s, 0, GETVAL) == 3, "semaphores: semop -2 of 5 did not leave 3");
  struct sembuf block = {1, -1, IPC_NOWAIT};
  RT_CHECK(semop(s, &block, 1) < 0 && errno == EAGAIN, "semaphores: taking a zero semaphore did not say EAGAIN");

  /* Messages: in order, with their types and bodies, then none. */
  struct msqid_ds qds;
  RT_CHECK(msgctl(q, IPC_STAT, &qds) == 0 && qds.msg_qnum == 3 && (qds.msg_perm.mode & 0777) == 0600,
           "queue: %d messages or mode %o", (int)qds.msg_qnum, qds.msg_perm.mode & 0777);
  ssize_t n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
  RT_CHECK(n == 5 && m.mtype == 1 && memcmp(m.text, "hello", 5) == 0, "queue: first message differs (%zd bytes)", n);
  n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
  RT_CHECK(n == 7 && m.mtype == 7 && memcmp(m.text, "world!!", 7) == 0, "queue: second message differs");
  n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
  RT_CHECK(n == BIG_MSG && m.mtype == 2 && same((unsigned char *)m.text, BIG_MSG, 4), "queue: third message differs");
  RT_CHECK(msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT) < 0 && errno == ENOMSG, "queue: more than three messages");
  return rt_finish();
}
