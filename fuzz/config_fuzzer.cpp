// parse_config (TOML, SPEC "Configuration"): any text either gives a Config
// or a non-empty list of errors naming the file and a reason. Never a crash,
// an exception or a hang, whatever the file holds (holdd --check-config is run
// on files edited by hand).
// Input: the TOML text.
#include <exception>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_input.h"
#include "holdd/config/config.h"

using namespace holdd;
using namespace holdd::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string path = "/fuzz/holdd.toml";
  try {
    auto result = parse_config(text, path, FileChecks::kSkip);
    if (auto* errors = std::get_if<std::vector<ConfigError>>(&result)) {
      FUZZ_CHECK(!errors->empty(), text);
      for (const ConfigError& e : *errors) {
        FUZZ_CHECK(e.file == path, e.to_string());
        FUZZ_CHECK(!e.reason.empty(), e.to_string());
      }
    } else {
      const Config& c = std::get<Config>(result);
      // Validation promises: limits that would make the daemon useless are refused.
      FUZZ_CHECK(!c.server.listen.empty(), text);
      FUZZ_CHECK(c.server.max_recipients > 0, text);
      FUZZ_CHECK(c.server.max_message_size > 0, text);
      FUZZ_CHECK(c.delivery.retry_min <= c.delivery.retry_max, text);
    }
  } catch (const std::exception& e) {
    property_failed("parse_config threw", e.what());
  }
  return 0;
}
