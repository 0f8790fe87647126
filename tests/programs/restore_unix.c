/* Restore test: AF_UNIX sockets (issue 13; #9 for pairs across a tree).
 *   usage: restore_unix GOFILE WORKDIR MODE [NAME]
 *   MODE pairs    socketpairs in one process with queued data both ways:
 *                 stream 40/41 ("hello world" for 41, "back" for 40; 40
 *                 SO_PASSCRED, 41 SO_RCVBUF/SO_SNDBUF set), dgram 42/43
 *                 ("a" "bb" "ccc" for 43, "zz" for 42), seqpacket 44/45
 *                 ("one" "two" for 45; 45 shut down for writing, 44
 *                 O_NONBLOCK), stream 46 whose peer is closed ("bye" then
 *                 end of file), and 47 a dup of 41.
 *        listen   a stream listener on WORKDIR/stream.sock (fd 40, mode
 *                 0600, backlog 7), a seqpacket one in the abstract
 *                 namespace (fd 41), a dgram socket bound to
 *                 WORKDIR/dgram.sock with two datagrams queued (fd 42), and
 *                 a connected client/accepted pair of the stream listener
 *                 (fds 43/44) with "ping" queued for 44 and "pong" for 43.
 *                 After the restore new clients connect to both listeners.
 *        tree     a stream and a seqpacket socketpair between this process
 *                 (fds 40, 42) and its child (fds 41, 43) with data queued
 *                 both ways; each side checks its own ends.
 *        peer     a stream socket (fd 40) connected to the listener NAME
 *                 (abstract) of the test, outside the dumped tree: refused.
 *        rights   a stream socketpair (40/41) with fd 0 in flight to 41 in
 *                 an SCM_RIGHTS message: refused. After go, 41 receives it. */
#include "rt_prog.h"

#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static void pair(int type, int a, int b) {
  int sv[2];
  if (socketpair(AF_UNIX, type, 0, sv) != 0) rt_die("socketpair");
  /* Out of the way of the targets first. */
  int x = fcntl(sv[0], F_DUPFD, 100), y = fcntl(sv[1], F_DUPFD, 100);
  close(sv[0]);
  close(sv[1]);
  rt_place(x, a);
  rt_place(y, b);
}

static void send_str(int fd, const char *s) {
  if (send(fd, s, strlen(s), 0) != (ssize_t)strlen(s)) rt_die("send %s on %d", s, fd);
}

/* Receives one message (non-blocking) and checks it is `want`. */
static int int_opt(int fd, int name);

/* A stream has no boundaries: read exactly the bytes wanted. */
static void expect_msg(int fd, const char *want) {
  char buf[256];
  size_t len = int_opt(fd, SO_TYPE) == SOCK_STREAM ? strlen(want) : sizeof buf;
  ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
  RT_CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, n), "fd %d: received %zd bytes \"%.*s\", expected \"%s\"",
           fd, n, n > 0 ? (int)n : 0, buf, want);
}

static void expect_empty(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
  RT_CHECK(n < 0 && errno == EAGAIN, "fd %d: more queued than expected (recv %zd)", fd, n);
}

static void expect_eof(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
  RT_CHECK(n == 0, "fd %d: expected end of file, recv gave %zd (%s)", fd, n, n < 0 ? strerror(errno) : "data");
}

static int int_opt(int fd, int name) {
  int v = -1;
  socklen_t l = sizeof v;
  getsockopt(fd, SOL_SOCKET, name, &v, &l);
  return v;
}

static socklen_t addr(struct sockaddr_un *a, const char *name, int abstract) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (abstract) {
    memcpy(a->sun_path + 1, name, strlen(name));
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
  }
  strcpy(a->sun_path, name);
  return sizeof *a;
}

static int connect_to(int type, const char *name, int abstract) {
  struct sockaddr_un a;
  socklen_t l = addr(&a, name, abstract);
  int s = socket(AF_UNIX, type, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&a, l) != 0) return -1;
  return s;
}

static int rcvbuf_before, sndbuf_before;
static char stream_path[4096], dgram_path[4096], abstract_name[64];

static void setup_pairs(void) {
  pair(SOCK_STREAM, 40, 41);
  int on = 1, big = 100000;
  setsockopt(40, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  setsockopt(41, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(41, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  rcvbuf_before = int_opt(41, SO_RCVBUF);
  sndbuf_before = int_opt(41, SO_SNDBUF);
  send_str(40, "hello ");
  send_str(40, "world");
  send_str(41, "back");
  pair(SOCK_DGRAM, 42, 43);
  send_str(42, "a");
  send_str(42, "bb");
  send_str(42, "ccc");
  send_str(43, "zz");
  pair(SOCK_SEQPACKET, 44, 45);
  send_str(44, "one");
  send_str(44, "two");
  if (shutdown(45, SHUT_WR) != 0) rt_die("shutdown");
  fcntl(44, F_SETFL, O_NONBLOCK);
  pair(SOCK_STREAM, 46, 60);
  send_str(60, "bye");
  close(60);
  if (dup2(41, 47) != 47) rt_die("dup2 47");
}

static void check_pairs(void) {
  RT_CHECK(int_opt(40, SO_TYPE) == SOCK_STREAM && int_opt(42, SO_TYPE) == SOCK_DGRAM &&
               int_opt(44, SO_TYPE) == SOCK_SEQPACKET,
           "socket types changed");
  RT_CHECK(int_opt(40, SO_PASSCRED) == 1 && int_opt(41, SO_PASSCRED) == 0, "SO_PASSCRED not as set");
  RT_CHECK(int_opt(41, SO_RCVBUF) == rcvbuf_before, "fd 41 SO_RCVBUF %d, was %d", int_opt(41, SO_RCVBUF), rcvbuf_before);
  RT_CHECK(int_opt(41, SO_SNDBUF) == sndbuf_before, "fd 41 SO_SNDBUF %d, was %d", int_opt(41, SO_SNDBUF), sndbuf_before);
  RT_CHECK(fcntl(44, F_GETFL) & O_NONBLOCK, "fd 44: O_NONBLOCK lost");
  RT_CHECK(!(fcntl(45, F_GETFL) & O_NONBLOCK), "fd 45: O_NONBLOCK appeared");
  /* Stream: one run of bytes; read through the dup shares the queue. */
  char buf[64];
  ssize_t n = recv(47, buf, 6, MSG_DONTWAIT);
  RT_CHECK(n == 6 && !memcmp(buf, "hello ", 6), "fd 47 (dup of 41): read %zd", n);
  expect_msg(41, "world");
  expect_empty(41);
  expect_msg(40, "back");
  expect_empty(40);
  /* Datagrams keep their boundaries and order. */
  expect_msg(43, "a");
  expect_msg(43, "bb");
  expect_msg(43, "ccc");
  expect_empty(43);
  expect_msg(42, "zz");
  expect_empty(42);
  expect_msg(45, "one");
  expect_msg(45, "two");
  expect_empty(45);
  /* 45 shut down for writing: 44 sees end of file, 45 cannot send, 44 can. */
  expect_eof(44);
  RT_CHECK(send(45, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "fd 45: send after SHUT_WR did not fail with EPIPE");
  send_str(44, "three");
  expect_msg(45, "three");
  expect_msg(46, "bye");
  expect_eof(46);
  /* Still connected to each other. */
  send_str(41, "again");
  expect_msg(40, "again");
  send_str(43, "d");
  expect_msg(42, "d");
}

static void setup_listen(const char *dir) {
  snprintf(stream_path, sizeof stream_path, "%s/stream.sock", dir);
  snprintf(dgram_path, sizeof dgram_path, "%s/dgram.sock", dir);
  snprintf(abstract_name, sizeof abstract_name, "ckpt-test-%d", getpid());
  struct sockaddr_un a;
  socklen_t l = addr(&a, stream_path, 0);
  rt_place(socket(AF_UNIX, SOCK_STREAM, 0), 40);
  if (bind(40, (struct sockaddr *)&a, l) != 0 || listen(40, 7) != 0) rt_die("bind/listen %s", stream_path);
  chmod(stream_path, 0600);
  l = addr(&a, abstract_name, 1);
  rt_place(socket(AF_UNIX, SOCK_SEQPACKET, 0), 41);
  if (bind(41, (struct sockaddr *)&a, l) != 0 || listen(41, 3) != 0) rt_die("bind/listen @%s", abstract_name);
  l = addr(&a, dgram_path, 0);
  rt_place(socket(AF_UNIX, SOCK_DGRAM, 0), 42);
  if (bind(42, (struct sockaddr *)&a, l) != 0) rt_die("bind %s", dgram_path);
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (sendto(s, "first", 5, 0, (struct sockaddr *)&a, l) != 5 || sendto(s, "second!", 7, 0, (struct sockaddr *)&a, l) != 7)
    rt_die("sendto %s", dgram_path);
  close(s);
  rt_place(connect_to(SOCK_STREAM, stream_path, 0), 43);
  rt_place(accept(40, NULL, NULL), 44);
  send_str(43, "ping");
  send_str(44, "pong");
}

static void check_listen(void) {
  struct sockaddr_un a;
  socklen_t l = sizeof a;
  RT_CHECK(getsockname(40, (struct sockaddr *)&a, &l) == 0 && !strcmp(a.sun_path, stream_path),
           "fd 40 is not bound to %s", stream_path);
  struct stat st;
  RT_CHECK(stat(stream_path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600,
           "%s: not a socket of mode 0600 (mode %o)", stream_path, st.st_mode);
  RT_CHECK(int_opt(40, SO_ACCEPTCONN) == 1 && int_opt(41, SO_ACCEPTCONN) == 1, "the listeners do not listen");
  expect_msg(42, "first");
  expect_msg(42, "second!");
  expect_empty(42);
  expect_msg(44, "ping");
  expect_msg(43, "pong");
  send_str(43, "more");
  expect_msg(44, "more");
  /* New clients connect to the re-bound names and are accepted. */
  int c = connect_to(SOCK_STREAM, stream_path, 0);
  RT_CHECK(c >= 0, "connect to %s after the restore: %s", stream_path, strerror(errno));
  int s = c >= 0 ? accept(40, NULL, NULL) : -1;
  RT_CHECK(s >= 0, "accept on fd 40: %s", strerror(errno));
  if (c >= 0 && s >= 0) {
    send_str(c, "new client");
    expect_msg(s, "new client");
  }
  c = connect_to(SOCK_SEQPACKET, abstract_name, 1);
  RT_CHECK(c >= 0, "connect to @%s after the restore: %s", abstract_name, strerror(errno));
  s = c >= 0 ? accept(41, NULL, NULL) : -1;
  RT_CHECK(s >= 0, "accept on fd 41: %s", strerror(errno));
  if (c >= 0 && s >= 0) {
    send_str(c, "m1");
    send_str(c, "m2");
    expect_msg(s, "m1");
    expect_msg(s, "m2");
  }
  c = socket(AF_UNIX, SOCK_DGRAM, 0);
  l = addr(&a, dgram_path, 0);
  RT_CHECK(sendto(c, "third", 5, 0, (struct sockaddr *)&a, l) == 5, "sendto %s after the restore: %s", dgram_path,
           strerror(errno));
  expect_msg(42, "third");
}

/* Child of the tree mode: ends 41 (stream) and 43 (seqpacket). */
static int tree_child(const char *go) {
  close(40);
  close(42);
  rt_wait_go(go);
  expect_msg(41, "to child");
  expect_empty(41);
  expect_msg(43, "c1");
  expect_msg(43, "c2");
  expect_empty(43);
  send_str(41, "child after");
  send_str(43, "child msg");
  return rt_failures ? 1 : 0;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  const char *mode = argv[3];
  pid_t child = -1;
  if (!strcmp(mode, "pairs")) {
    setup_pairs();
  } else if (!strcmp(mode, "listen")) {
    setup_listen(argv[2]);
  } else if (!strcmp(mode, "tree")) {
    pair(SOCK_STREAM, 40, 41);
    pair(SOCK_SEQPACKET, 42, 43);
    send_str(40, "to child");
    send_str(41, "to parent");
    send_str(42, "c1");
    send_str(42, "c2");
    send_str(43, "p1");
    child = fork();
    if (child < 0) rt_die("fork");
    if (child == 0) _exit(tree_child(argv[1]));
    close(41);
    close(43);
  } else if (!strcmp(mode, "peer")) {
    if (argc < 5) rt_die("peer: no listener name");
    rt_place(connect_to(SOCK_STREAM, argv[4], 1), 40);
  } else if (!strcmp(mode, "rights")) {
    pair(SOCK_STREAM, 40, 41);
    char c = 'r';
    struct iovec iov = {&c, 1};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    int zero = 0;
    memcpy(CMSG_DATA(cm), &zero, sizeof zero);
    if (sendmsg(40, &msg, 0) != 1) rt_die("sendmsg SCM_RIGHTS");
  } else {
    rt_die("unknown mode %s", mode);
  }
  rt_ready();
  rt_wait_go(argv[1]);

  if (!strcmp(mode, "pairs")) {
    check_pairs();
  } else if (!strcmp(mode, "listen")) {
    check_listen();
  } else if (!strcmp(mode, "tree")) {
    /* The child may have sent "child after" already: no expect_empty. */
    expect_msg(40, "to parent");
    expect_msg(42, "p1");
    int st = 0;
    RT_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
             "the child's checks failed (status 0x%x)", st);
    expect_msg(40, "child after");
    expect_msg(42, "child msg");
  } else if (!strcmp(mode, "rights")) {
    char c;
    struct iovec iov = {&c, 1};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    RT_CHECK(recvmsg(41, &msg, 0) == 1 && CMSG_FIRSTHDR(&msg) && CMSG_FIRSTHDR(&msg)->cmsg_type == SCM_RIGHTS,
             "the fd in flight did not arrive");
  }
  return rt_finish();
}
