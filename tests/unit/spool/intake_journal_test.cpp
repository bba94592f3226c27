#include "holdd/spool/intake_journal.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <random>

namespace holdd {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kEpoch = 0x1234567890abcdefull;
constexpr uint64_t kCapacity = 1 << 20;

JournalRecord record(const std::string& head, const std::string& bulk) {
  return JournalRecord{head, std::make_shared<const std::string>(bulk)};
}

std::unique_ptr<IntakeJournal> open_journal(const fs::path& file, uint64_t epoch = kEpoch) {
  auto j = IntakeJournal::open(file.string(), epoch, kCapacity);
  REQUIRE(j.ok());
  return std::move(*j);
}

Status append(IntakeJournal& j, const std::vector<JournalRecord>& records) {
  std::vector<const JournalRecord*> pointers;
  for (const JournalRecord& r : records) pointers.push_back(&r);
  return j.append(pointers);
}

TEST_CASE("IntakeJournal: records come back in order, after the applied one, with head and bulk") {
  TempDir dir;
  const fs::path file = dir.path / "journal";
  {
    auto j = open_journal(file);
    CHECK(fs::file_size(file) == kCapacity);  // preallocated: appends never grow it
    CHECK(j->recover(0).empty());
    REQUIRE(append(*j, {record("h1", "one"), record("h2", std::string(5000, 'b'))}).is_ok());
    REQUIRE(append(*j, {record("h3", "")}).is_ok());
    CHECK(j->last_seq() == 3);
  }
  auto j = open_journal(file);
  auto all = j->recover(0);
  REQUIRE(all.size() == 3);
  CHECK(all[0].seq == 1);
  CHECK(all[0].head == "h1");
  CHECK(all[0].bulk == "one");
  CHECK(all[1].bulk == std::string(5000, 'b'));
  CHECK(all[2].head == "h3");
  CHECK(all[2].bulk.empty());
  // LMDB holds record 1: recovery starts at 2... but records start at offset 0,
  // so a journal whose first record is not applied + 1 is a finished cycle.
  CHECK(j->recover(1).empty());
  CHECK(j->recover(3).empty());
}

TEST_CASE("IntakeJournal: after restart, stale records of the previous cycle are never replayed") {
  TempDir dir;
  const fs::path file = dir.path / "journal";
  {
    auto j = open_journal(file);
    REQUIRE(append(*j, {record("a", std::string(100, 'a')), record("b", "b"), record("c", "c")}).is_ok());
    j->restart(3);  // an LMDB commit holds 1..3
    REQUIRE(append(*j, {record("d", "d")}).is_ok());  // seq 4 over the start of record 1
    CHECK(j->last_seq() == 4);
  }
  auto j = open_journal(file);
  auto after = j->recover(3);
  REQUIRE(after.size() == 1);  // record 4; what follows it on disk is 1..3's leftovers
  CHECK(after[0].seq == 4);
  CHECK(after[0].head == "d");
}

TEST_CASE("IntakeJournal: a damaged record ends the journal") {
  TempDir dir;
  const fs::path file = dir.path / "journal";
  uint64_t second_offset = 0;
  {
    auto j = open_journal(file);
    REQUIRE(append(*j, {record("first", "1111")}).is_ok());
    second_offset = IntakeJournal::kHeaderSize + 9;
    REQUIRE(append(*j, {record("second", "2222"), record("third", "3333")}).is_ok());
  }
  {
    int fd = ::open(file.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    const char x = 'X';
    // A byte of the second record's bulk, as a torn write would leave it.
    REQUIRE(::pwrite(fd, &x, 1, static_cast<off_t>(second_offset + IntakeJournal::kHeaderSize + 7)) == 1);
    ::close(fd);
  }
  auto j = open_journal(file);
  auto got = j->recover(0);
  REQUIRE(got.size() == 1);
  CHECK(got[0].head == "first");
}

TEST_CASE("IntakeJournal: records of another spool (epoch) are ignored") {
  TempDir dir;
  const fs::path file = dir.path / "journal";
  {
    auto j = open_journal(file);
    REQUIRE(append(*j, {record("x", "y")}).is_ok());
  }
  auto j = open_journal(file, kEpoch + 1);
  CHECK(j->recover(0).empty());
}

TEST_CASE("IntakeJournal: a second user of the same journal is refused") {
  TempDir dir;
  const fs::path file = dir.path / "journal";
  auto first = open_journal(file);
  auto second = IntakeJournal::open(file.string(), kEpoch, kCapacity);
  REQUIRE(!second.ok());
  CHECK(second.status().message().find("another holdd") != std::string::npos);
}

TEST_CASE("IntakeJournal: what does not fit is refused, and restart makes room again") {
  TempDir dir;
  auto j = open_journal(dir.path / "journal");
  const std::string half(kCapacity / 2, 'h');
  CHECK(j->fits(half.size(), 1));
  REQUIRE(append(*j, {record("", half)}).is_ok());
  CHECK(!j->fits(half.size(), 1));
  CHECK(!append(*j, {record("", half)}).is_ok());
  j->restart(j->last_seq());
  CHECK(j->fits(half.size(), 1));
}

}  // namespace
}  // namespace holdd
