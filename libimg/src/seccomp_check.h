// Seccomp filter chains restore cannot install again (seccomp_check.cc).
#pragma once

#include <vector>

#include <ckpt/img/restorable.h>

namespace ckpt::img {

/// Every thread whose privileges no restore can give back: filters with
/// SECCOMP_RET_USER_NOTIF (their listener is not in the image), filters
/// that refuse rt_sigreturn (the restorer's last call), filters without
/// no_new_privs or CAP_SYS_ADMIN (the kernel would refuse them), ambient
/// capabilities outside permitted and inheritable.
std::vector<Unsupported> unsupported_seccomp(const CkptView &view);

}  // namespace ckpt::img
