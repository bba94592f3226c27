#pragma once
// Extends a file with written zeros (not fallocate(): ext4 records fallocated
// blocks as unwritten extents, and the first fdatasync over them commits file
// system metadata again). Used for LMDB's data file (SpoolPreallocation) and the
// intake journal, so that later writes there are plain overwrites.
#include <cstdint>

#include "holdd/base/status.h"

namespace holdd {

// Writes zeros over [from, to) of `fd` and flushes them (fdatasync). On failure the
// file is truncated back to `from` (the space is returned) and the Status says
// why (kNoSpace for ENOSPC/EDQUOT).
Status zero_fill(int fd, uint64_t from, uint64_t to);

}  // namespace holdd
