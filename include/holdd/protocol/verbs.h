#pragma once
// The verbs of the control protocol (docs/control-protocol.md), each defined once:
// its name, the line `holdctl --help` shows for it, its synopsis as
// man/holdctl.8 gives it, and the arguments holdctl takes. Each side attaches its
// own part by name: holdctl a request builder and a printer (cli/client_verbs.h),
// the daemon a handler (control/commands.cpp). Unit tests check that holdctl, the
// daemon and man/holdctl.8 have exactly these verbs, so adding one is an entry
// here, its builder and printer, its handler and its paragraph in the man page.
//
// Header-only constexpr data, like framing.h, in the protocol module (layer 1)
// that holdctl's cli/ and the daemon's control/ both link.
#include <cstddef>
#include <iterator>
#include <span>
#include <string_view>

namespace holdd::protocol {

// How holdctl takes an argument. A name that does not begin with '-' is a
// positional argument.
enum class ArgKind {
  kFlag,      // --yes
  kText,      // MAILBOX, --file F
  kTextList,  // MAILBOX..., ID...
  kNumber,    // --rate N: a number, at least 0
};

struct Arg {
  std::string_view name;  // "--file", "MAILBOX"
  ArgKind kind = ArgKind::kText;
  std::string_view help = {};       // its line in `holdctl VERB --help`
  std::string_view type_name = {};  // "F", "DUR", "N"; empty: CLI11's own (TEXT)
  bool required = false;
  std::span<const std::string_view> choices = {};  // when not empty: only these
  std::string_view excludes = {};                   // an argument it cannot go with
};

struct Verb {
  std::string_view name;
  std::string_view summary;   // its line in `holdctl --help`
  std::string_view synopsis;  // what follows the name in man/holdctl.8 (COMMANDS)
  std::span<const Arg> args;  // in the order `holdctl VERB --help` lists them
};

namespace verb_args {

// `releasing` exists only with [cluster] (SPEC "Several nodes").
inline constexpr std::string_view kStates[] = {"old", "held", "releasing", "migrated"};

inline constexpr Arg kMailboxes{.name = "MAILBOX",
                                .kind = ArgKind::kTextList,
                                .help = "addresses (aliases are resolved)"};
inline constexpr Arg kFile{.name = "--file",
                           .help = "read addresses from F, one a line ('#' comments); - for stdin",
                           .type_name = "F"};
inline constexpr Arg kOneMailbox{.name = "MAILBOX", .required = true};

inline constexpr Arg kList[] = {
    {.name = "--state", .help = "only mailboxes in this state", .choices = kStates}};
inline constexpr Arg kShow[] = {kOneMailbox};
inline constexpr Arg kBatch[] = {kMailboxes, kFile};
inline constexpr Arg kRelease[] = {
    kMailboxes,
    kFile,
    {.name = "--wait", .kind = ArgKind::kFlag, .help = "return once the backlog is delivered or parked"},
    {.name = "--timeout", .help = "with --wait: stop waiting after DUR (the release stays)", .type_name = "DUR"},
    {.name = "--rate", .kind = ArgKind::kNumber, .help = "at most N messages a second for this release",
     .type_name = "N"},
    {.name = "--dry-run", .kind = ArgKind::kFlag, .help = "show what would be replayed, change nothing"},
    {.name = "--verify", .kind = ArgKind::kFlag,
     .help = "probe the new server first; release only the mailboxes it accepts"}};
inline constexpr std::string_view kUpstreams[] = {"new", "old"};
inline constexpr Arg kProbe[] = {
    kMailboxes,
    kFile,
    {.name = "--upstream", .help = "the server to ask (default new)", .choices = kUpstreams}};
inline constexpr Arg kMigrate[] = {
    kMailboxes,
    kFile,
    {.name = "--copy", .help = "the copy command, run by /bin/sh per mailbox ({mailbox} {local} {domain})",
     .type_name = "CMD", .required = true},
    {.name = "--parallel", .kind = ArgKind::kNumber, .help = "copies at once (default 4)", .type_name = "N"},
    {.name = "--verify", .kind = ArgKind::kFlag, .help = "release only if the new server accepts the mailbox"},
    {.name = "--rate", .kind = ArgKind::kNumber, .help = "replay at most N messages a second per release",
     .type_name = "N"},
    {.name = "--copy-timeout", .help = "a copy running longer is killed (its mailbox stays held)",
     .type_name = "DUR"},
    {.name = "--log-dir", .help = "the copies' output, one file per mailbox (default ./holdctl-migrate-<UTC time>)",
     .type_name = "DIR"},
    {.name = "--dry-run", .kind = ArgKind::kFlag, .help = "show the plan, change nothing"}};
inline constexpr std::string_view kNodeActions[] = {"list", "forget"};
inline constexpr Arg kNode[] = {
    {.name = "ACTION", .help = "list: every node; forget NODE: remove a node that will not come back",
     .required = true, .choices = kNodeActions},
    {.name = "NODE", .help = "with forget: the node's name ([cluster] node)"}};
inline constexpr Arg kNote[] = {kOneMailbox, {.name = "TEXT", .required = true}};
inline constexpr Arg kRetry[] = {
    {.name = "MAILBOX"},
    {.name = "--all", .kind = ArgKind::kFlag, .help = "every mailbox", .excludes = "MAILBOX"}};
inline constexpr Arg kDrop[] = {{.name = "ID", .kind = ArgKind::kTextList, .required = true},
                                {.name = "--yes", .kind = ArgKind::kFlag, .help = "really delete"}};
inline constexpr Arg kCheck[] = {
    {.name = "--warn-age", .help = "warn when held mail is older (default 24h)", .type_name = "DUR"},
    {.name = "--crit-age", .help = "critical when held mail is older (default 72h)", .type_name = "DUR"},
    {.name = "--old-quiet", .help = "warn unless nothing was relayed to the old server for DUR",
     .type_name = "DUR"}};

}  // namespace verb_args

// In the order of `holdctl --help` and of man/holdctl.8.
inline constexpr Verb kVerbs[] = {
    {"status", "counts, held and queued mail, last relays", "", {}},
    {"list", "mailboxes with state, queued count, bytes, oldest age", "[--state old|held|releasing|migrated]",
     verb_args::kList},
    {"show", "one mailbox: state, history, queue summary, last delivery and error", "MAILBOX",
     verb_args::kShow},
    {"queue", "a mailbox's queued messages in delivery order", "MAILBOX", verb_args::kShow},
    {"lock", "hold mail for mailboxes (returns once none is being relayed)", "MAILBOX... | --file F",
     verb_args::kBatch},
    {"release", "mark migrated and replay held mail to the new server in order",
     "MAILBOX... | --file F [--wait [--timeout DUR]] [--rate N] [--dry-run] [--verify]", verb_args::kRelease},
    {"revert", "back to old: queued mail goes to the old server, in order", "MAILBOX... | --file F",
     verb_args::kBatch},
    {"retry", "requeue parked messages now", "[MAILBOX | --all]", verb_args::kRetry},
    {"drop", "delete queued messages by ID (shows them without --yes)", "ID... [--yes]", verb_args::kDrop},
    {"pause", "stop all relaying (intake continues)", "", {}},
    {"resume", "restart relaying", "", {}},
    {"check", "monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
     "[--warn-age DUR] [--crit-age DUR] [--old-quiet DUR]", verb_args::kCheck},
    {"probe", "ask the new (or old) server whether it knows each mailbox; nothing is delivered",
     "MAILBOX... | --file F [--upstream new|old]", verb_args::kProbe},
    {"migrate", "the cutover of a batch: lock, run the copy command, release, per mailbox",
     "MAILBOX... | --file F --copy CMD [--parallel N] [--verify] [--rate N] [--copy-timeout DUR] "
     "[--log-dir DIR] [--dry-run]",
     verb_args::kMigrate},
    {"note", "add a line of text to a mailbox's history (shown by show)", "MAILBOX TEXT", verb_args::kNote},
    {"node", "the nodes of a cluster: list them, or forget one that will not come back", "list | forget NODE",
     verb_args::kNode},
};

// The verb called `name`, or nullptr.
constexpr const Verb* find_verb(std::string_view name) {
  for (const Verb& v : kVerbs) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

// Whether the `.name`s of `table` are those of kVerbs, in that order: holdctl's
// and the daemon's tables each static_assert it, so a verb without its builder,
// printer or handler does not build.
template <typename Table>
constexpr bool names_every_verb(const Table& table) {
  if (std::size(table) != std::size(kVerbs)) return false;
  std::size_t i = 0;
  for (const auto& entry : table) {
    if (entry.name != kVerbs[i++].name) return false;
  }
  return true;
}

}  // namespace holdd::protocol
