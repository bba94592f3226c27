#include "holdd/spool/free_disk_check.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"

#include <cstdint>
#include <limits>

namespace holdd {
namespace {

TEST_CASE("FreeDiskCheck: low while free space is below min_free, not above") {
  TempDir dir;
  FreeDiskCheck roomy(dir.path.string(), /*min_free=*/0);
  CHECK_FALSE(roomy.is_low());
  CHECK(roomy.free_bytes() > 0);

  FreeDiskCheck wants_more(dir.path.string(), std::numeric_limits<uint64_t>::max());
  CHECK(wants_more.is_low());  // the first call asks the file system
  CHECK(wants_more.was_low());
  CHECK(wants_more.free_bytes() > 0);
}

TEST_CASE("FreeDiskCheck: a path it cannot ask about leaves the last answer as it was") {
  TempDir dir;
  FreeDiskCheck check((dir.path / "missing").string(), std::numeric_limits<uint64_t>::max());
  check.refresh();
  CHECK_FALSE(check.was_low());
  CHECK(check.free_bytes() == 0);
}

}  // namespace
}  // namespace holdd
