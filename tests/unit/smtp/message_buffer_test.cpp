#include "holdd/smtp/message_buffer.h"

#include <doctest/doctest.h>

#include <string>

#include "holdd/smtp/bdat_reader.h"
#include "holdd/smtp/data_reader.h"

namespace holdd::smtp {
namespace {

constexpr uint64_t kCopies = MessageBuffer::kPeakCopies;

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

TEST_CASE("MessageBuffer: content comes back whole, in one string with the headroom asked for") {
  for (size_t n : {0u, 1u, 4095u, 4096u, 4097u, 100000u, 3u << 20}) {
    CAPTURE(n);
    MessageBuffer buffer;
    const std::string content = pattern(n);
    // In pieces of an awkward size, so that pieces straddle blocks.
    for (size_t at = 0; at < n; at += 1000) {
      REQUIRE(buffer.append(content.data() + at, std::min<size_t>(1000, n - at)));
    }
    CHECK(buffer.size() == n);
    CHECK(buffer.str() == content);
    std::optional<std::string> whole = buffer.take(512);
    REQUIRE(whole.has_value());
    CHECK(*whole == content);
    CHECK(whole->capacity() >= n + 512);
    CHECK(buffer.size() == 0);
  }
}

TEST_CASE("MessageBuffer: each byte held is charged twice, blocks never beyond max_size") {
  MessageMemoryBudget budget(1u << 30);
  MessageBuffer buffer(budget.reservation(), /*max_size=*/10000);
  const std::string content = pattern(10000);
  REQUIRE(buffer.append(content.data(), 1));
  CHECK(budget.used() == kCopies * 4096);  // the first block: 4 KiB
  REQUIRE(buffer.append(content.data() + 1, 9999));
  // Blocks of 4, 4 KiB and then only the 1808 bytes that may still come.
  CHECK(budget.used() == kCopies * 10000);
  CHECK(buffer.charged() == budget.used());
  std::optional<std::string> whole = buffer.take(100);
  REQUIRE(whole.has_value());
  CHECK(*whole == content);
  // The blocks are gone; what is left covers the string and the spool's copy.
  CHECK(budget.used() == kCopies * 10100);
  MessageMemoryBudget::Reservation held = buffer.take_reservation();
  CHECK(held.bytes() == kCopies * 10100);
  held.release();
  CHECK(budget.used() == 0);
}

TEST_CASE("MessageBuffer: refused when the budget runs out: empty, memory given back, later appends ignored") {
  MessageMemoryBudget budget(kCopies * 20000);
  MessageMemoryBudget::Reservation other = budget.reservation();
  REQUIRE(other.grow(kCopies * 8000));
  MessageBuffer buffer(budget.reservation(), /*max_size=*/1u << 20);
  const std::string content = pattern(30000);
  REQUIRE(buffer.append(content.data(), 8192));  // blocks of 4 + 4 KiB
  CHECK_FALSE(buffer.refused());
  CHECK_FALSE(buffer.append(content.data(), 8192));  // the next 8 KiB block does not fit
  CHECK(buffer.refused());
  CHECK(buffer.size() == 0);
  CHECK(budget.used() == kCopies * 8000);  // only the other reservation's
  CHECK_FALSE(buffer.append(content.data(), 1));
  CHECK(budget.used() == kCopies * 8000);
  CHECK(budget.refusals() == 1);
}

TEST_CASE("MessageBuffer: reserve() takes budget ahead without allocating, and blocks use it") {
  MessageMemoryBudget budget(kCopies * 100000);
  MessageBuffer buffer(budget.reservation(), 1u << 20);
  CHECK(buffer.reserve(64 * 1024));
  CHECK(budget.used() == kCopies * 64 * 1024);
  const std::string content = pattern(20000);
  REQUIRE(buffer.append(content.data(), content.size()));
  CHECK(budget.used() == kCopies * 64 * 1024);  // covered by what was reserved
  CHECK_FALSE(buffer.reserve(100000));  // 2 x 120000 > the limit
  CHECK_FALSE(buffer.refused());        // a failed reserve() refuses nothing
  CHECK(buffer.str() == content);
}

TEST_CASE("MessageBuffer: take() needs room for the headroom and the copy") {
  MessageMemoryBudget budget(kCopies * 4096);
  MessageBuffer buffer(budget.reservation(), 1u << 20);
  const std::string content = pattern(4096);
  REQUIRE(buffer.append(content.data(), content.size()));  // one full 4 KiB block
  CHECK_FALSE(buffer.take(1024).has_value());  // 2 x (4096 + 1024) does not fit
  CHECK(budget.used() == kCopies * 4096);
  std::optional<std::string> whole = buffer.take(0);
  REQUIRE(whole.has_value());
  CHECK(*whole == content);
}

TEST_CASE("DataReader and BdatReader: out of memory, they decode to the end and keep nothing") {
  MessageMemoryBudget budget(kCopies * 16 * 1024);
  {
    DataReader reader(1u << 20, budget.reservation());
    std::string line = std::string(78, 'x') + "\r\n";
    std::string wire;
    for (int i = 0; i < 1000; ++i) wire += line;  // 80000 octets: more than the budget
    wire += ".\r\nQUIT\r\n";
    const size_t used = reader.feed(wire);
    CHECK(reader.ended());
    CHECK(used == wire.size() - 6);  // stopped right after the end marker
    CHECK(reader.out_of_memory());
    CHECK_FALSE(reader.too_big());
    CHECK(reader.size() == 80000);
    CHECK(budget.used() == 0);  // given back as soon as it was refused
  }
  {
    BdatReader reader(1u << 20, budget.reservation());
    reader.feed(std::string(50000, 'y'));
    reader.finish();
    CHECK(reader.out_of_memory());
    CHECK(reader.size() == 50002);  // the CRLF finish() adds is counted too
    CHECK(budget.used() == 0);
  }
  CHECK(budget.refusals() == 2);
}

}  // namespace
}  // namespace holdd::smtp
