/* A restored thread's credentials and privileges (set_privileges), the
 * last of its own setup (restorer.c setup_thread). */
#include "syscalls.h"

/* capset(2) with the three sets (v3: two 32-bit words per set). */
static long set_caps(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct { uint32_t version; int32_t pid; } hdr = {LINUX_CAPABILITY_VERSION_3, 0};
  struct { uint32_t eff, prm, inh; } data[2] = {
      {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
      {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  return sys2(NR_capset, &hdr, data);
}

/* Credentials and privileges, per thread (the kernel keeps them per task).
 * The kernel dictates the order:
 *  - setresuid away from uid 0 clears the permitted and effective sets
 *    unless SECBIT_KEEP_CAPS is set (PR_SET_KEEPCAPS), and always clears
 *    the effective set (cap_emulate_setxuid), so ids go first with
 *    KEEP_CAPS set, and capset raises the effective set back to what we
 *    still hold: the steps after it need CAP_SETPCAP;
 *  - an ambient capability can only be raised while it is in both the
 *    permitted and the inheritable set, so the inheritable set is set
 *    first and the ambient set before the permitted set shrinks (capset
 *    keeps ambient ∩ permitted ∩ inheritable, which is the image's own);
 *  - PR_CAPBSET_DROP and PR_SET_SECUREBITS need CAP_SETPCAP in the
 *    effective set, so they come before the final capset drops it;
 *  - no_new_privs is one-way and needs nothing, so it is last.
 * seccomp comes later still, in enter_thread: a filter also filters these
 * calls. */
void set_privileges(const struct rs_args *a, const struct rs_thread *t) {
  long r;
  int caps = (t->priv & RS_PRIV_CAPS) != 0;
  if (a->set_creds) {
    if (caps && (r = sys2(NR_prctl, PR_SET_KEEPCAPS, 1)) < 0) fail(a, RS_CREDS, r);
    r = sys2(NR_setgroups, a->ngroups, a->groups);
    if (r >= 0) r = sys3(NR_setresgid, a->gid[0], a->gid[1], a->gid[2]);
    if (r >= 0) r = sys3(NR_setresuid, a->uid[0], a->uid[1], a->uid[2]);
    if (r < 0) fail(a, RS_CREDS, r);
    /* Changing ids makes the mm non-dumpable; a process that was dumpable
     * (can read its own /proc files, be traced by its user) is again. */
    if (a->dumpable) sys2(NR_prctl, PR_SET_DUMPABLE, 1);
  }
  if (caps) {
    /* What we still hold (imgtool checked it covers the image's sets),
     * effective again, with the image's inheritable set. */
    r = set_caps(a->cap_permitted_now, a->cap_permitted_now, t->cap_inheritable);
    if (r < 0) fail(a, RS_CAPS, r);
    r = sys5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (unsigned c = 0; c < 64 && r >= 0; c++)
      if (t->cap_ambient & (1ull << c)) r = sys5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
    for (unsigned c = 0; c < 64 && r >= 0; c++)
      if (t->cap_bounding_drop & (1ull << c)) r = sys2(NR_prctl, PR_CAPBSET_DROP, c);
    if (r < 0) fail(a, RS_CAPS, r);
    /* KEEP_CAPS needs no privilege to change (and is ours from above). */
    r = sys2(NR_prctl, PR_SET_KEEPCAPS, (t->securebits & SECBIT_KEEP_CAPS) != 0);
    if (r < 0) fail(a, RS_SECUREBITS, r);
    if ((uint32_t)sys1(NR_prctl, PR_GET_SECUREBITS) != t->securebits) {
      r = sys2(NR_prctl, PR_SET_SECUREBITS, t->securebits);
      if (r < 0) fail(a, RS_SECUREBITS, r);
    }
    r = set_caps(t->cap_effective, t->cap_permitted, t->cap_inheritable);
    if (r < 0) fail(a, RS_CAPS, r);
  }
  if (t->priv & RS_PRIV_NO_NEW_PRIVS) {
    r = sys5(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (r < 0) fail(a, RS_NO_NEW_PRIVS, r);
  }
}
