#pragma once
// Sizes ("50MiB") and durations ("5m") as written in holdd.toml.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace holdd {

// "123", "123B", "4KiB", "50MiB", "2GiB", "1TiB" (binary units; a bare number is
// bytes; spaces may separate number and unit). nullopt if malformed or if it
// overflows 64 bits. "50MB" is malformed: decimal units are not guessed at.
std::optional<uint64_t> parse_size(std::string_view text);
// "30s", "5m", "4h", "2d", and combinations such as "1h30m" (largest unit first,
// each at most once); a bare number is seconds. nullopt if malformed or too large.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace holdd
