// Records of the CKPT notes. Each struct is the exact little-endian layout
// of one record (docs/FORMAT.md gives the byte offsets): fixed-width fields,
// explicit padding, every u64 at an 8-aligned offset, so the layout is the
// same for 32- and 64-bit builds. A record only ever grows at its end; a
// reader fills fields that an older writer did not know with zeros.
//
// One header per concern; code includes this one, which includes them all.
// A new record is appended to the header of its concern.
#pragma once

#include <ckpt/img/records_refs.h>
#include <ckpt/img/records_image.h>
#include <ckpt/img/records_process.h>
#include <ckpt/img/records_memory.h>
#include <ckpt/img/records_fds.h>
#include <ckpt/img/records_fd_states.h>
#include <ckpt/img/records_ipc.h>
