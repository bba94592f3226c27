#include "holdd/cli/text_output.h"

#include <doctest/doctest.h>

#include <sstream>

namespace holdd::cli {
namespace {

using json = nlohmann::json;

TEST_CASE("text_output: JSON values, sizes and ages as words") {
  CHECK(str(json("a")) == "a");
  CHECK(str(json(nullptr)) == "-");
  CHECK(str(json(nullptr), "") == "");
  CHECK(str(json(42)) == "42");
  CHECK(num(json(7)) == 7);
  CHECK(num(json("7")) == 0);
  CHECK(num(json(nullptr)) == 0);
  CHECK(sender_text(json("")) == "<>");
  CHECK(sender_text(json(nullptr)) == "<>");
  CHECK(sender_text(json("a@x")) == "a@x");

  struct SizeCase {
    uint64_t bytes;
    const char* text;
  };
  const SizeCase sizes[] = {{0, "0 B"}, {1023, "1023 B"}, {1536, "1.5 KiB"}, {3ULL << 30, "3.0 GiB"}};
  for (const SizeCase& c : sizes) CHECK(human_size(c.bytes) == c.text);

  struct AgeCase {
    json seconds;
    const char* text;
  };
  const AgeCase ages[] = {{json(nullptr), "-"}, {json(-5), "0s"}, {json(0), "0s"},     {json(59), "59s"},
                          {json(310), "5m10s"}, {json(7200), "2h"}, {json(3660), "1h1m"}, {json(273600), "3d4h"}};
  for (const AgeCase& c : ages) {
    CAPTURE(c.seconds.dump());
    CHECK(human_age(c.seconds) == c.text);
  }
}

TEST_CASE("Table: columns padded to the widest cell, the last one not padded") {
  Table t({"ID", "STATE", "NOTE"});
  t.add({"long-id", "held", ""});
  t.add({"x", "migrated", "n"});
  std::ostringstream out;
  t.print(out);
  CHECK(out.str() ==
        "ID       STATE     NOTE\n"
        "long-id  held\n"
        "x        migrated  n\n");
}

}  // namespace
}  // namespace holdd::cli
