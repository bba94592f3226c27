#pragma once
// /metrics in the Prometheus text exposition format 0.0.4. Every name starts with
// holdd_; counters end in _total and count since the daemon started; gauges are
// read from the same DaemonSnapshot as `holdctl status` and `holdctl check`.
#include <string>

#include "holdd/control/snapshot.h"

namespace holdd {

// Pure: renders the snapshot (intake counters and latency histogram included).
// Histogram buckets are cumulative in the output, as the format requires, although
// LatencyHistogram stores them per bound.
std::string render_metrics(const DaemonSnapshot& s);

}  // namespace holdd
