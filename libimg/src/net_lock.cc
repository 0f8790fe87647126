// The network lock of a TCP connection (net_lock.h): nftables tables made
// and removed through nfnetlink messages built here.
#include <ckpt/img/net_lock.h>
#include <ckpt/img/fd_states.h>
#include <ckpt/img/netlink.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace ckpt::img {

namespace {

constexpr const char *kChain = "input";

// A message batch for nfnetlink: nlmsghdr + nfgenmsg + attributes, nested
// attributes marked NLA_F_NESTED as libmnl marks them.
class NlBuffer {
 public:
  size_t begin(u16 type, u16 flags, u8 family, u16 res_id = 0) {
    size_t at = buf_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = ++seq_;
    append(&h, sizeof h);
    nfgenmsg g{};
    g.nfgen_family = family;
    g.version = NFNETLINK_V0;
    g.res_id = htons(res_id);
    append(&g, sizeof g);
    if (flags & NLM_F_ACK) acks_++;
    return at;
  }
  void end(size_t at) { header(at)->nlmsg_len = u32(buf_.size() - at); }
  void put(u16 type, const void *data, size_t len) {
    nlattr a{};
    a.nla_len = u16(NLA_HDRLEN + len);
    a.nla_type = type;
    append(&a, sizeof a);
    append(data, len);
    pad();
  }
  void put_str(u16 type, const std::string &s) { put(type, s.c_str(), s.size() + 1); }
  void put_be32(u16 type, u32 v) {
    u32 be = htonl(v);
    put(type, &be, sizeof be);
  }
  size_t nest(u16 type) {
    size_t at = buf_.size();
    nlattr a{};
    a.nla_type = u16(type | NLA_F_NESTED);
    append(&a, sizeof a);
    return at;
  }
  void nest_end(size_t at) { reinterpret_cast<nlattr *>(buf_.data() + at)->nla_len = u16(buf_.size() - at); }
  const std::vector<char> &bytes() const { return buf_; }
  int acks() const { return acks_; }

 private:
  nlmsghdr *header(size_t at) { return reinterpret_cast<nlmsghdr *>(buf_.data() + at); }
  void append(const void *p, size_t n) {
    const char *c = static_cast<const char *>(p);
    buf_.insert(buf_.end(), c, c + n);
  }
  void pad() { buf_.resize(NLA_ALIGN(buf_.size())); }
  std::vector<char> buf_;
  u32 seq_ = u32(time(nullptr));
  int acks_ = 0;
};

constexpr u16 nft(u16 msg) { return u16(NFNL_SUBSYS_NFTABLES << 8 | msg); }

// A socket to nfnetlink in the network namespace of `netns_of` (0: ours).
// setns(CLONE_NEWNET) moves only the calling thread, and a socket belongs
// to the namespace it was made in: a short-lived thread makes it there.
Expected<int> nfnetlink_socket(pid_t netns_of) {
  auto open_here = [] { return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER); };
  struct stat theirs{}, ours{};
  std::string path = "/proc/" + std::to_string(netns_of) + "/ns/net";
  if (netns_of == 0 || stat(path.c_str(), &theirs) != 0 || stat("/proc/self/ns/net", &ours) != 0 ||
      (theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev)) {
    int s = open_here();
    if (s < 0) return make_error("socket(NETLINK_NETFILTER): %s", strerror(errno));
    return s;
  }
  int ns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  int s = -1, err = 0;
  std::thread t([&] {
    if (setns(ns, CLONE_NEWNET) != 0) {
      err = errno;
      return;
    }
    s = open_here();
    if (s < 0) err = errno;
  });
  t.join();
  close(ns);
  if (s < 0) return make_error("nfnetlink socket in the network namespace of pid %d: %s", netns_of, strerror(err));
  return s;
}

// Sends the messages and reads one acknowledgement per message that asked
// for one; the first error is the answer (-errno), 0 when all succeeded.
Expected<int> exchange(int s, const NlBuffer &b) {
  const auto &bytes = b.bytes();
  if (int e = send_to_kernel(s, bytes.data(), bytes.size())) return make_error("nfnetlink send: %s", strerror(e));
  std::vector<char> buf(16384);
  for (int acks = 0; acks < b.acks();) {
    ssize_t n = recv(s, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("nfnetlink reply: %s", strerror(errno));
    size_t left = size_t(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf.data()); nlmsg_ok(h, left); h = nlmsg_next(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;  // a get's answer before its ack
      int error = reinterpret_cast<nlmsgerr *>(NLMSG_DATA(h))->error;
      if (error) return error;
      acks++;
    }
  }
  return 0;
}

// exchange() about one table, closing the socket: true when it was done,
// false when the table is not there (ENOENT), else an error saying `what`.
Expected<bool> exchange_for_table(int s, const NlBuffer &b, const std::string &what) {
  auto result = exchange(s, b);
  close(s);
  if (!result) return result.error();
  if (*result == -ENOENT) return false;
  if (*result) return make_error("%s: %s", what.c_str(), strerror(-*result));
  return true;
}

void add_table_messages(NlBuffer &b, const std::string &name, u16 type, u16 flags) {
  size_t m = b.begin(nft(type), u16(NLM_F_REQUEST | NLM_F_ACK | flags), NFPROTO_INET);
  b.put_str(NFTA_TABLE_NAME, name);
  b.end(m);
}

// One expression of a rule: NFTA_LIST_ELEM { NAME, DATA { ... } }.
template <class Fill>
void expression(NlBuffer &b, const char *name, Fill fill) {
  size_t elem = b.nest(NFTA_LIST_ELEM);
  b.put_str(NFTA_EXPR_NAME, name);
  size_t data = b.nest(NFTA_EXPR_DATA);
  fill();
  b.nest_end(data);
  b.nest_end(elem);
}

void compare_equal(NlBuffer &b, const void *value, size_t len) {
  expression(b, "cmp", [&] {
    b.put_be32(NFTA_CMP_SREG, NFT_REG_1);
    b.put_be32(NFTA_CMP_OP, NFT_CMP_EQ);
    size_t d = b.nest(NFTA_CMP_DATA);
    b.put(NFTA_DATA_VALUE, value, len);
    b.nest_end(d);
  });
}

void meta_equal(NlBuffer &b, u32 key, u8 value) {
  expression(b, "meta", [&] {
    b.put_be32(NFTA_META_KEY, key);
    b.put_be32(NFTA_META_DREG, NFT_REG_1);
  });
  compare_equal(b, &value, 1);
}

void payload_equal(NlBuffer &b, u32 base, u32 offset, const void *value, u32 len) {
  expression(b, "payload", [&] {
    b.put_be32(NFTA_PAYLOAD_DREG, NFT_REG_1);
    b.put_be32(NFTA_PAYLOAD_BASE, base);
    b.put_be32(NFTA_PAYLOAD_OFFSET, offset);
    b.put_be32(NFTA_PAYLOAD_LEN, len);
  });
  compare_equal(b, value, len);
}

bool v4_mapped(const u8 (&a)[16]) {
  static const u8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, 12) == 0;
}

// The rule: packets from the peer's address and port to ours, TCP.
void drop_rule(NlBuffer &b, const std::string &table, const TcpConnectionEnds &c) {
  size_t m = b.begin(nft(NFT_MSG_NEWRULE), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, NFPROTO_INET);
  b.put_str(NFTA_RULE_TABLE, table);
  b.put_str(NFTA_RULE_CHAIN, kChain);
  size_t list = b.nest(NFTA_RULE_EXPRESSIONS);
  bool v4 = c.family == AF_INET || (v4_mapped(c.local_addr) && v4_mapped(c.peer_addr));
  const u8 *local = c.family == AF_INET || !v4 ? c.local_addr : c.local_addr + 12;
  const u8 *peer = c.family == AF_INET || !v4 ? c.peer_addr : c.peer_addr + 12;
  meta_equal(b, NFT_META_NFPROTO, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
  meta_equal(b, NFT_META_L4PROTO, IPPROTO_TCP);
  // Source and destination addresses: IPv4 header offsets 12 and 16,
  // IPv6 header offsets 8 and 24.
  payload_equal(b, NFT_PAYLOAD_NETWORK_HEADER, v4 ? 12 : 8, peer, v4 ? 4 : 16);
  payload_equal(b, NFT_PAYLOAD_NETWORK_HEADER, v4 ? 16 : 24, local, v4 ? 4 : 16);
  u16 ports[2] = {htons(c.peer_port), htons(c.local_port)};  // TCP source, destination
  payload_equal(b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, ports, sizeof ports);
  expression(b, "immediate", [&] {
    b.put_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    size_t d = b.nest(NFTA_IMMEDIATE_DATA);
    size_t v = b.nest(NFTA_DATA_VERDICT);
    b.put_be32(NFTA_VERDICT_CODE, NF_DROP);
    b.nest_end(v);
    b.nest_end(d);
  });
  b.nest_end(list);
  b.end(m);
}

void batch_edge(NlBuffer &b, u16 type) { b.end(b.begin(type, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES)); }

std::string hex(const u8 *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

}  // namespace

std::string net_lock_name(const TcpConnectionEnds &c) {
  size_t n = c.family == AF_INET6 ? 16 : 4;
  return "ckpt_lock_" + hex(c.local_addr, n) + "_" + std::to_string(c.local_port) + "_" + hex(c.peer_addr, n) + "_" +
         std::to_string(c.peer_port);
}

Status net_lock_add(const TcpConnectionEnds &c, pid_t netns_of) {
  std::string name = net_lock_name(c);
  auto s = nfnetlink_socket(netns_of);
  if (!s) return s.error();
  NlBuffer b;
  batch_edge(b, NFNL_MSG_BATCH_BEGIN);
  // Made, removed and made again in one transaction: a stale lock of the
  // same connection goes, and no rule is there twice.
  add_table_messages(b, name, NFT_MSG_NEWTABLE, NLM_F_CREATE);
  add_table_messages(b, name, NFT_MSG_DELTABLE, 0);
  add_table_messages(b, name, NFT_MSG_NEWTABLE, NLM_F_CREATE);
  size_t m = b.begin(nft(NFT_MSG_NEWCHAIN), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, NFPROTO_INET);
  b.put_str(NFTA_CHAIN_TABLE, name);
  b.put_str(NFTA_CHAIN_NAME, kChain);
  size_t hook = b.nest(NFTA_CHAIN_HOOK);
  b.put_be32(NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_IN);
  // The raw priority (NF_IP_PRI_RAW, -300): before conntrack, which then
  // never sees the dropped segments.
  b.put_be32(NFTA_HOOK_PRIORITY, u32(-300));
  b.nest_end(hook);
  b.put_be32(NFTA_CHAIN_POLICY, NF_ACCEPT);
  b.put_str(NFTA_CHAIN_TYPE, "filter");
  b.end(m);
  drop_rule(b, name, c);
  batch_edge(b, NFNL_MSG_BATCH_END);
  auto result = exchange(*s, b);
  close(*s);
  if (!result) return result.error();
  if (*result)
    return make_error("network lock of TCP %s -> %s (nftables): %s", inet_endpoint_text(c.family, c.local_addr, c.local_port).c_str(),
                      inet_endpoint_text(c.family, c.peer_addr, c.peer_port).c_str(), strerror(-*result));
  return {};
}

Expected<bool> net_lock_remove(const TcpConnectionEnds &c, pid_t netns_of) {
  auto s = nfnetlink_socket(netns_of);
  if (!s) return s.error();
  NlBuffer b;
  batch_edge(b, NFNL_MSG_BATCH_BEGIN);
  add_table_messages(b, net_lock_name(c), NFT_MSG_DELTABLE, 0);
  batch_edge(b, NFNL_MSG_BATCH_END);
  return exchange_for_table(*s, b, "removing the network lock " + net_lock_name(c));
}

Expected<bool> net_lock_present(const TcpConnectionEnds &c) {
  auto s = nfnetlink_socket(0);
  if (!s) return s.error();
  NlBuffer b;
  add_table_messages(b, net_lock_name(c), NFT_MSG_GETTABLE, 0);
  return exchange_for_table(*s, b, "looking for the network lock " + net_lock_name(c));
}

Expected<std::vector<std::string>> net_lock_names() {
  auto s = nfnetlink_socket(0);
  if (!s) return s.error();
  NlBuffer b;
  b.end(b.begin(nft(NFT_MSG_GETTABLE), NLM_F_REQUEST | NLM_F_DUMP, NFPROTO_INET));
  const auto &bytes = b.bytes();
  std::vector<std::string> names;
  if (int e = send_to_kernel(*s, bytes.data(), bytes.size())) {
    close(*s);
    return make_error("nfnetlink send: %s", strerror(e));
  }
  std::vector<char> buf(65536);
  for (;;) {
    ssize_t n = recv(*s, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(*s);
      return make_error("nfnetlink reply: %s", strerror(e));
    }
    size_t left = size_t(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf.data()); nlmsg_ok(h, left); h = nlmsg_next(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        close(*s);
        return names;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        int error = reinterpret_cast<nlmsgerr *>(NLMSG_DATA(h))->error;
        close(*s);
        return make_error("listing nftables tables: %s", strerror(-error));
      }
      int len = int(h->nlmsg_len - NLMSG_LENGTH(sizeof(nfgenmsg)));
      auto *a = reinterpret_cast<nlattr *>(static_cast<char *>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(nfgenmsg)));
      for (; len >= int(sizeof *a) && a->nla_len >= sizeof *a && a->nla_len <= len;
           len -= NLA_ALIGN(a->nla_len), a = reinterpret_cast<nlattr *>(reinterpret_cast<char *>(a) + NLA_ALIGN(a->nla_len)))
        if ((a->nla_type & NLA_TYPE_MASK) == NFTA_TABLE_NAME) {
          std::string name(reinterpret_cast<char *>(a) + NLA_HDRLEN, strnlen(reinterpret_cast<char *>(a) + NLA_HDRLEN, a->nla_len - NLA_HDRLEN));
          if (name.rfind("ckpt_lock_", 0) == 0) names.push_back(name);
        }
    }
  }
}

}  // namespace ckpt::img
