// Fault injection for the fault tests (tests/faults, the list of points in
// docs/design/fault-points.md): CKPT_FAULT=<point> makes the process SIGKILL
// itself when it reaches the point named; CKPT_FAULT=<point>:eio makes
// fault_point() return an injected I/O error there instead;
// CKPT_FAULT=<point>:wait creates the file $CKPT_FAULT_WAIT.<point> there and
// waits (at most a minute) until $CKPT_FAULT_WAIT exists, so that a test can
// act at that moment. Several points are comma-separated ("a:wait,b"). Unset
// (every real run), a point costs one cached lookup and does nothing.
#pragma once

#include <ckpt/img/expected.h>

namespace ckpt::img {

/// Reaching point `name`: kills this process, returns the injected error,
/// waits for the test, or (the point not asked for) returns success.
Status fault_point(const char *name);

/// Whether CKPT_FAULT names `name` (any action): for code that must act
/// on the fault itself, such as the restorer blob, which cannot call this.
bool fault_point_armed(const char *name);

}  // namespace ckpt::img
