#pragma once
// Operator log set-up: stdout, one line per event, flushed per line. Under
// systemd (JOURNAL_STREAM set) lines carry a <N> syslog priority prefix and no
// timestamp, so journald records the right priority and its own time.
namespace holdd {

void setup_logging(bool verbose);

}  // namespace holdd
