/* Restore test: TCP and UDP sockets (issue 13). Each mode sets sockets up
 * at fixed fds, prints what the test checks, "ready", and after the
 * restore checks addresses, options, queued bytes and that each socket
 * still works.
 *   usage: restore_tcp GOFILE WORKDIR MODE [PORT]
 *   MODE listen  fd 40: TCP listener on 127.0.0.1 (SO_REUSEADDR, backlog 7,
 *                O_NONBLOCK); fd 41: TCP listener on [::1] (IPV6_V6ONLY);
 *                after the restore a client connects to each
 *        pair4 / pair6  an established connection inside the process over
 *                127.0.0.1 / ::1: fd 40 the listener, fd 41 the client
 *                (TCP_NODELAY, SO_KEEPALIVE with TCP_KEEPIDLE 77, a 32 KiB
 *                send buffer), fd 42 the
 *                accepted end (O_NONBLOCK, a small receive buffer). 41 has
 *                written a pattern until its send queue filled (most of it
 *                never sent: the peer's window is shut), 42 has written a
 *                line that 41 has not read. After the restore every byte
 *                arrives once, in order, and both ways carry on.
 *        udp     fd 40: UDP bound to 127.0.0.1, two datagrams queued from
 *                fd 41; fd 41: UDP bound and connected to fd 40, one
 *                datagram queued from 40. Boundaries and senders come back.
 *        peer    fd 40: a TCP connection to 127.0.0.1:PORT, a peer the test
 *                holds outside the dumped process. Before the dump it sent
 *                1000 pattern bytes; the test sent 500 it has not read.
 *                After the restore it reads those 500, sends 100000 more
 *                and reads 100000 back from the test.
 *        stream  fd 40: a TCP connection to 127.0.0.1:PORT (the test). From
 *                "ready" on it reads pattern bytes (seed 9) until the end of
 *                stream, through the dump, the kill, the restore, checking
 *                each byte (nothing lost, nothing twice), then sends back
 *                "total N\n". It does not wait for the go file.
 *        prefork  a pre-fork server in a tree: fd 40 a listener (backlog 8),
 *                fd 41 a client of it, fd 42 the accepted end, then a
 *                worker forked, holding all three too. After the restore
 *                the worker accepts a new client of the parent's and
 *                answers it, writes "w" on the shared fd 42 and exits 0;
 *                then the parent accepts a client itself, writes "p" on
 *                42, and fd 41 reads "wp".
 *        closewait  (refused at dump, then checked in the original) an
 *                established pair whose accepted end fd 42 shut down its
 *                sending side: fd 41 is in CLOSE_WAIT, fd 42 in FIN_WAIT2
 *        pending (refused likewise) fd 40 a listener, fd 41 a client it
 *                has not accepted yet; afterwards it is accepted and works
 * Prints "port N" (listen: "port6 N" too) before "ready". */
#include "rt_prog.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int family_of(const char *mode) { return strchr(mode, '6') ? AF_INET6 : AF_INET; }

static socklen_t loopback(int family, struct sockaddr_storage *a, int port) {
  memset(a, 0, sizeof *a);
  if (family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)a;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    in6->sin6_port = htons(port);
    return sizeof *in6;
  }
  struct sockaddr_in *in = (struct sockaddr_in *)a;
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  in->sin_port = htons(port);
  return sizeof *in;
}

static int port_of(int fd) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) return -1;
  return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
}

static int peer_port_of(int fd) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  if (getpeername(fd, (struct sockaddr *)&a, &len) != 0) return -1;
  return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
}

static int opt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  getsockopt(fd, level, name, &v, &len);
  return v;
}

static void set_opt(int fd, int level, int name, int v) {
  if (setsockopt(fd, level, name, &v, sizeof v) != 0) rt_die("setsockopt %d/%d on fd %d", level, name, fd);
}

/* The byte at stream offset i of a pattern. */
static unsigned char pattern(unsigned long i, unsigned seed) { return (unsigned char)((i * 131 + seed + (i >> 9)) & 0xff); }

/* Reads exactly n bytes (waiting up to 10 s), checking them against the
 * pattern from offset `from`. Returns the bytes read. */
static size_t read_pattern(int fd, unsigned long from, size_t n, unsigned seed, const char *what) {
  unsigned char buf[8192];
  size_t got = 0;
  double until = 0;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  until = ts.tv_sec + 10.0;
  while (got < n) {
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 100);
    size_t want = n - got < sizeof buf ? n - got : sizeof buf;
    ssize_t r = recv(fd, buf, want, MSG_DONTWAIT);
    if (r == 0) {
      rt_fail("%s: end of stream after %zu of %zu bytes", what, got, n);
      return got;
    }
    if (r < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        rt_fail("%s: recv after %zu of %zu bytes: %s", what, got, n, strerror(errno));
        return got;
      }
      clock_gettime(CLOCK_MONOTONIC, &ts);
      if (ts.tv_sec > until) {
        rt_fail("%s: only %zu of %zu bytes arrived", what, got, n);
        return got;
      }
      continue;
    }
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] != pattern(from + got + i, seed)) {
        rt_fail("%s: byte %lu is %u, expected %u", what, from + got + i, buf[i], pattern(from + got + i, seed));
        return got;
      }
    got += r;
  }
  return got;
}

/* Writes n pattern bytes from offset `from` (blocking fd or not). */
static void write_pattern(int fd, unsigned long from, size_t n, unsigned seed, const char *what) {
  unsigned char buf[8192];
  size_t done = 0;
  while (done < n) {
    size_t k = n - done < sizeof buf ? n - done : sizeof buf;
    for (size_t i = 0; i < k; i++) buf[i] = pattern(from + done + i, seed);
    ssize_t w = send(fd, buf, k, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, 100);
      continue;
    }
    if (w < 0) {
      rt_fail("%s: send: %s", what, strerror(errno));
      return;
    }
    done += w;
  }
}

static void expect_no_more(int fd, const char *what) {
  char c;
  ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
  RT_CHECK(r < 0 && errno == EAGAIN, "%s: more bytes than expected (recv %zd)", what, r);
}

/* A TCP socket of `family` at fd `fd` listening on loopback (any port),
 * with SO_REUSEADDR when `reuse`. */
static void listen_loopback(int fd, int family, int backlog, int reuse) {
  struct sockaddr_storage a;
  rt_place(socket(family, SOCK_STREAM, 0), fd);
  if (reuse) set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  socklen_t len = loopback(family, &a, 0);
  if (bind(fd, (struct sockaddr *)&a, len) != 0 || listen(fd, backlog) != 0) rt_die("listen");
}

/* fd (a TCP socket of `family`) connected to the listener at fd `listener`. */
static void connect_loopback(int fd, int family, int listener) {
  struct sockaddr_storage a;
  socklen_t len = loopback(family, &a, port_of(listener));
  if (connect(fd, (struct sockaddr *)&a, len) != 0) rt_die("connect");
}

/* A client connects to listener fd and is accepted: both ends work. */
static void check_listener(int fd, int family, int port, const char *what) {
  struct sockaddr_storage a;
  socklen_t len = loopback(family, &a, port);
  int c = socket(family, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&a, len) != 0) {
    rt_fail("%s: connect to port %d: %s", what, port, strerror(errno));
    close(c);
    return;
  }
  struct pollfd p = {fd, POLLIN, 0};
  RT_CHECK(poll(&p, 1, 5000) == 1, "%s: the connection did not arrive", what);
  int s = accept(fd, NULL, NULL);
  RT_CHECK(s >= 0, "%s: accept: %s", what, strerror(errno));
  if (s >= 0) {
    RT_CHECK(send(c, "hi", 2, 0) == 2, "%s: send", what);
    char b[2];
    RT_CHECK(recv(s, b, 2, MSG_WAITALL) == 2 && !memcmp(b, "hi", 2), "%s: bytes through the accepted connection", what);
    close(s);
  }
  close(c);
}

/* A new client of the listener on 127.0.0.1:port. */
static int connect_client(int port) {
  struct sockaddr_storage a;
  socklen_t len = loopback(AF_INET, &a, port);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&a, len) != 0) rt_fail("connect to port %d: %s", port, strerror(errno));
  return c;
}

/* prefork's worker after the restore: accepts one client on the inherited
 * listener, answers it, and writes "w" on the inherited connection. */
static void serve_as_worker(void) {
  int s = accept(40, NULL, NULL);
  RT_CHECK(s >= 0, "worker: accept on the inherited listener: %s", strerror(errno));
  RT_CHECK(s >= 0 && send(s, "worker", 6, 0) == 6, "worker: answering its client");
  RT_CHECK(send(42, "w", 1, 0) == 1, "worker: send on the inherited connection: %s", strerror(errno));
  if (s >= 0) close(s);
}

/* Reads pattern bytes (seed 9) until the end of stream, then sends back
 * how many arrived. */
static void read_stream_to_end(int fd) {
  unsigned char buf[8192];
  unsigned long total = 0;
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rt_fail("stream: recv after %lu bytes: %s", total, strerror(errno));
      return;
    }
    if (r == 0) break;
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] != pattern(total + i, 9)) {
        rt_fail("stream: byte %lu is %u, expected %u", total + i, buf[i], pattern(total + i, 9));
        return;
      }
    total += r;
  }
  char line[64];
  int n = snprintf(line, sizeof line, "total %lu\n", total);
  RT_CHECK(send(fd, line, n, MSG_NOSIGNAL) == n, "stream: sending the total: %s", strerror(errno));
}

static const char kLine[] = "a line from the accepted end\n";

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  const char *mode = argv[3];
  int family = family_of(mode);
  struct sockaddr_storage a;
  socklen_t len;
  size_t pattern_sent = 0;
  pid_t worker = -1;
  if (!strcmp(mode, "listen")) {
    rt_place(socket(AF_INET, SOCK_STREAM, 0), 40);
    set_opt(40, SOL_SOCKET, SO_REUSEADDR, 1);
    len = loopback(AF_INET, &a, 0);
    if (bind(40, (struct sockaddr *)&a, len) != 0 || listen(40, 7) != 0) rt_die("listen 4");
    fcntl(40, F_SETFL, O_NONBLOCK);
    rt_place(socket(AF_INET6, SOCK_STREAM, 0), 41);
    set_opt(41, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    len = loopback(AF_INET6, &a, 0);
    if (bind(41, (struct sockaddr *)&a, len) != 0 || listen(41, 3) != 0) rt_die("listen 6");
    printf("port %d\nport6 %d\n", port_of(40), port_of(41));
  } else if (!strcmp(mode, "pair4") || !strcmp(mode, "pair6")) {
    listen_loopback(40, family, 4, 0);
    rt_place(socket(family, SOCK_STREAM, 0), 41);
    set_opt(41, IPPROTO_TCP, TCP_NODELAY, 1);
    set_opt(41, SOL_SOCKET, SO_KEEPALIVE, 1);
    set_opt(41, IPPROTO_TCP, TCP_KEEPIDLE, 77);
    set_opt(41, SOL_SOCKET, SO_SNDBUF, 32768);
    connect_loopback(41, family, 40);
    rt_place(accept(40, NULL, NULL), 42);
    set_opt(42, SOL_SOCKET, SO_RCVBUF, 4096);
    fcntl(42, F_SETFL, O_NONBLOCK);
    if (send(42, kLine, sizeof kLine - 1, 0) != (ssize_t)(sizeof kLine - 1)) rt_die("send line");
    /* Fill 41's send queue: the receiver's small buffer shuts its window. */
    fcntl(41, F_SETFL, O_NONBLOCK);
    unsigned char buf[4096];
    for (int idle = 0; idle < 20;) {
      for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern(pattern_sent + i, 1);
      ssize_t w = send(41, buf, sizeof buf, MSG_NOSIGNAL);
      if (w > 0) {
        pattern_sent += w;
        idle = 0;
      } else {
        idle++;
        rt_sleep_ms(5);
      }
    }
    fcntl(41, F_SETFL, 0);
    int outq = 0;
    ioctl(41, TIOCOUTQ, &outq);
    printf("port %d\nsent %zu\noutq %d\n", port_of(40), pattern_sent, outq);
  } else if (!strcmp(mode, "udp")) {
    rt_place(socket(AF_INET, SOCK_DGRAM, 0), 40);
    len = loopback(AF_INET, &a, 0);
    if (bind(40, (struct sockaddr *)&a, len) != 0) rt_die("bind 40");
    rt_place(socket(AF_INET, SOCK_DGRAM, 0), 41);
    if (bind(41, (struct sockaddr *)&a, len) != 0) rt_die("bind 41");
    len = loopback(AF_INET, &a, port_of(40));
    if (connect(41, (struct sockaddr *)&a, len) != 0) rt_die("connect 41");
    if (send(41, "dgram-one", 9, 0) != 9 || send(41, "dgram-two!", 10, 0) != 10) rt_die("send to 40");
    len = loopback(AF_INET, &a, port_of(41));
    if (sendto(40, "back", 4, 0, (struct sockaddr *)&a, len) != 4) rt_die("send to 41");
    printf("port %d\nport41 %d\n", port_of(40), port_of(41));
  } else if (!strcmp(mode, "closewait") || !strcmp(mode, "pending")) {
    listen_loopback(40, AF_INET, 4, 0);
    rt_place(socket(AF_INET, SOCK_STREAM, 0), 41);
    connect_loopback(41, AF_INET, 40);
    if (!strcmp(mode, "closewait")) {
      rt_place(accept(40, NULL, NULL), 42);
      if (shutdown(42, SHUT_WR) != 0) rt_die("shutdown");
      rt_sleep_ms(100);
    }
    printf("port %d\n", port_of(40));
  } else if (!strcmp(mode, "peer")) {
    if (argc < 5) rt_die("peer needs PORT");
    rt_place(socket(AF_INET, SOCK_STREAM, 0), 40);
    len = loopback(AF_INET, &a, atoi(argv[4]));
    if (connect(40, (struct sockaddr *)&a, len) != 0) rt_die("connect to the test");
    write_pattern(40, 0, 1000, 7, "to the test");
    printf("port %d\n", port_of(40));
  } else if (!strcmp(mode, "prefork")) {
    listen_loopback(40, AF_INET, 8, 1);
    rt_place(socket(AF_INET, SOCK_STREAM, 0), 41);
    connect_loopback(41, AF_INET, 40);
    rt_place(accept(40, NULL, NULL), 42);
    printf("port %d\n", port_of(40));
    fflush(stdout);
    worker = fork();
    if (worker < 0) rt_die("fork");
    if (worker == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      rt_wait_go(argv[1]);
      serve_as_worker();
      _exit(rt_failures ? 1 : 0);
    }
  } else if (!strcmp(mode, "stream")) {
    if (argc < 5) rt_die("stream needs PORT");
    rt_place(socket(AF_INET, SOCK_STREAM, 0), 40);
    len = loopback(AF_INET, &a, atoi(argv[4]));
    if (connect(40, (struct sockaddr *)&a, len) != 0) rt_die("connect to the test");
    printf("port %d\n", port_of(40));
  } else {
    rt_die("unknown mode %s", mode);
  }
  int port40 = port_of(40);
  int port41 = !strcmp(mode, "listen") || !strcmp(mode, "udp") ? port_of(41) : 0;
  rt_ready();
  if (!strcmp(mode, "stream")) {
    read_stream_to_end(40);
    return rt_finish();
  }
  rt_wait_go(argv[1]);

  RT_CHECK(port_of(40) == port40, "fd 40: port %d, expected %d", port_of(40), port40);
  if (!strcmp(mode, "listen")) {
    RT_CHECK(port_of(41) == port41, "fd 41: port %d, expected %d", port_of(41), port41);
    RT_CHECK(opt(40, SOL_SOCKET, SO_ACCEPTCONN) == 1 && opt(41, SOL_SOCKET, SO_ACCEPTCONN) == 1, "not listening");
    RT_CHECK(opt(40, SOL_SOCKET, SO_REUSEADDR) == 1, "fd 40: SO_REUSEADDR lost");
    RT_CHECK(opt(41, SOL_SOCKET, SO_REUSEADDR) == 0, "fd 41: SO_REUSEADDR appeared");
    RT_CHECK(opt(41, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "fd 41: IPV6_V6ONLY lost");
    RT_CHECK(fcntl(40, F_GETFL) & O_NONBLOCK, "fd 40: O_NONBLOCK lost");
    RT_CHECK(!(fcntl(41, F_GETFL) & O_NONBLOCK), "fd 41: O_NONBLOCK appeared");
    check_listener(40, AF_INET, port40, "fd 40");
    check_listener(41, AF_INET6, port41, "fd 41");
  } else if (!strncmp(mode, "pair", 4)) {
    RT_CHECK(peer_port_of(41) == port40, "fd 41: peer port %d, expected %d", peer_port_of(41), port40);
    RT_CHECK(peer_port_of(42) == port_of(41), "fd 42: peer port %d, expected fd 41's %d", peer_port_of(42), port_of(41));
    RT_CHECK(opt(41, IPPROTO_TCP, TCP_NODELAY) == 1, "fd 41: TCP_NODELAY lost");
    RT_CHECK(opt(41, SOL_SOCKET, SO_KEEPALIVE) == 1, "fd 41: SO_KEEPALIVE lost");
    RT_CHECK(opt(41, IPPROTO_TCP, TCP_KEEPIDLE) == 77, "fd 41: TCP_KEEPIDLE %d", opt(41, IPPROTO_TCP, TCP_KEEPIDLE));
    RT_CHECK(opt(42, IPPROTO_TCP, TCP_NODELAY) == 0, "fd 42: TCP_NODELAY appeared");
    RT_CHECK(fcntl(42, F_GETFL) & O_NONBLOCK, "fd 42: O_NONBLOCK lost");
    RT_CHECK(!(fcntl(41, F_GETFL) & O_NONBLOCK), "fd 41: O_NONBLOCK appeared");
    RT_CHECK(opt(41, SOL_SOCKET, SO_SNDBUF) == 65536, "fd 41: SO_SNDBUF %d", opt(41, SOL_SOCKET, SO_SNDBUF));
    RT_CHECK(opt(42, SOL_SOCKET, SO_RCVBUF) == 8192, "fd 42: SO_RCVBUF %d", opt(42, SOL_SOCKET, SO_RCVBUF));
    /* Through a 4 KiB receive buffer the stream would crawl: open it up. */
    set_opt(42, SOL_SOCKET, SO_RCVBUF, 1 << 20);
    char line[sizeof kLine];
    RT_CHECK(recv(41, line, sizeof kLine - 1, MSG_WAITALL) == (ssize_t)(sizeof kLine - 1) &&
                 !memcmp(line, kLine, sizeof kLine - 1),
             "fd 41: the queued line did not come back");
    expect_no_more(41, "fd 41");
    /* Everything 41 wrote arrives once, in order, then more both ways. */
    read_pattern(42, 0, pattern_sent, 1, "fd 42 (queued)");
    expect_no_more(42, "fd 42");
    write_pattern(41, pattern_sent, 20000, 1, "fd 41 after");
    read_pattern(42, pattern_sent, 20000, 1, "fd 42 after");
    write_pattern(42, 0, 5000, 2, "fd 42 after");
    read_pattern(41, 0, 5000, 2, "fd 41 after");
    check_listener(40, family, port40, "fd 40");
  } else if (!strcmp(mode, "udp")) {
    RT_CHECK(port_of(41) == port41, "fd 41: port %d, expected %d", port_of(41), port41);
    RT_CHECK(peer_port_of(41) == port40, "fd 41: not connected to fd 40");
    char b[32];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(40, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
    RT_CHECK(n == 9 && !memcmp(b, "dgram-one", 9) && ntohs(from.sin_port) == port41, "fd 40: first datagram %zd", n);
    n = recvfrom(40, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
    RT_CHECK(n == 10 && !memcmp(b, "dgram-two!", 10) && ntohs(from.sin_port) == port41, "fd 40: second datagram %zd",
             n);
    RT_CHECK(recv(40, b, sizeof b, MSG_DONTWAIT) < 0 && errno == EAGAIN, "fd 40: a third datagram");
    n = recv(41, b, sizeof b, MSG_DONTWAIT);
    RT_CHECK(n == 4 && !memcmp(b, "back", 4), "fd 41: queued datagram %zd", n);
    RT_CHECK(send(41, "again", 5, 0) == 5, "fd 41: send");
    n = recvfrom(40, b, sizeof b, 0, (struct sockaddr *)&from, &flen);
    RT_CHECK(n == 5 && ntohs(from.sin_port) == port41, "fd 40: datagram after restore %zd", n);
  } else if (!strcmp(mode, "closewait")) {
    char c;
    RT_CHECK(recv(41, &c, 1, MSG_DONTWAIT) == 0, "fd 41: no end of stream");
    RT_CHECK(send(41, "x", 1, 0) == 1 && recv(42, &c, 1, 0) == 1 && c == 'x', "fd 41 -> 42 after the refused dump");
  } else if (!strcmp(mode, "pending")) {
    int s = accept(40, NULL, NULL);
    char c;
    RT_CHECK(s >= 0, "fd 40: accept after the refused dump: %s", strerror(errno));
    RT_CHECK(send(41, "y", 1, 0) == 1 && recv(s, &c, 1, 0) == 1 && c == 'y', "fd 41 -> accepted after the refused dump");
  } else if (!strcmp(mode, "prefork")) {
    RT_CHECK(opt(40, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 40: not listening");
    int c1 = connect_client(port40);
    char b[8];
    RT_CHECK(recv(c1, b, 6, MSG_WAITALL) == 6 && !memcmp(b, "worker", 6), "the worker did not answer its client");
    close(c1);
    int st = 0;
    RT_CHECK(waitpid(worker, &st, 0) == worker && WIFEXITED(st) && WEXITSTATUS(st) == 0,
             "worker %d: wait status 0x%x", worker, st);
    int c2 = connect_client(port40);
    int s2 = accept(40, NULL, NULL);
    RT_CHECK(s2 >= 0 && send(s2, "parent", 6, 0) == 6, "the parent's accept: %s", strerror(errno));
    RT_CHECK(recv(c2, b, 6, MSG_WAITALL) == 6 && !memcmp(b, "parent", 6), "the parent did not answer its client");
    RT_CHECK(send(42, "p", 1, 0) == 1, "fd 42 (parent): send");
    RT_CHECK(recv(41, b, 2, MSG_WAITALL) == 2 && !memcmp(b, "wp", 2), "fd 41: expected \"wp\" through fd 42");
    check_listener(40, AF_INET, port40, "fd 40 (parent)");
  } else if (!strcmp(mode, "peer")) {
    read_pattern(40, 0, 500, 8, "from the test (queued)");
    write_pattern(40, 1000, 100000, 7, "to the test");
    read_pattern(40, 500, 100000, 8, "from the test");
  }
  return rt_finish();
}
