#pragma once
// `holdctl migrate`: the cutover of a batch of mailboxes, run by holdctl (SPEC "The
// cutover helpers"). For each mailbox, one at a time per worker: lock it, run the
// operator's copy command (doveadm, imapsync) as the user who runs holdctl, and
// when the copy exits 0 release it (with verify: only if the new server accepts
// it). A failed copy leaves the mailbox held: nothing is lost, a rerun does what is
// left. Talks to the daemon only through the control protocol's requests.
#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace holdd::cli::migrate {

using json = nlohmann::json;

// Sends one control request ({"command": ..., "args": ...}) and returns the
// daemon's response ({"ok": ..., "result"|"error": ...}). Throws when the daemon
// cannot be reached; run() reports that and stops starting copies.
using Exchange = std::function<json(const json& request)>;

struct Options {
  std::vector<std::string> mailboxes;  // as the operator wrote them
  std::string copy;                    // CMD, with {mailbox} {local} {domain}
  int parallel = 4;
  bool verify = false;
  double rate = 0;                     // release --rate, 0: none
  std::chrono::seconds copy_timeout{0};  // 0: none
  std::string log_dir;                 // "": ./holdctl-migrate-<UTC time>/
  bool dry_run = false;
  bool json = false;                   // print the report as JSON
};

// Runs the batch; returns holdctl's exit code (0 when every mailbox is migrated
// at the end, 1 otherwise). Progress and the summary go to `out` (or the JSON
// report with options.json), problems to `err`. Installs SIGINT/SIGTERM handlers
// for its duration: the first signal starts no new copy, the second kills the
// running ones (their mailboxes stay held).
int run(const Options& options, const Exchange& exchange, std::ostream& out, std::ostream& err);

// `value` quoted for /bin/sh: 'it'\''s' (exposed for the unit test).
std::string shell_quote(const std::string& value);
// CMD with {mailbox}, {local} and {domain} replaced by the shell-quoted values.
std::string expand_command(const std::string& command, const std::string& mailbox);
// A file name for the mailbox's log: the address, '/' and leading dots replaced.
std::string log_file_name(const std::string& mailbox);

}  // namespace holdd::cli::migrate
