#pragma once
// What the control server and the metrics endpoint may see and touch of the
// running daemon. The daemon (app/) fills it in; everything is used on the
// io_context's thread.
#include <functional>
#include <memory>

#include "holdd/cluster/cluster_node.h"
#include "holdd/config/config.h"
#include "holdd/relay/dispatcher.h"
#include "holdd/route/directory.h"
#include "holdd/smtp/intake_stats.h"
#include "holdd/spool/spool.h"

namespace holdd {

struct DaemonView {
  Spool* spool = nullptr;
  Dispatcher* dispatcher = nullptr;
  cluster::ClusterNode* cluster = nullptr;  // [cluster] only: states shared in PostgreSQL
  const IntakeStats* intake = nullptr;
  std::function<const Config&()> config;                          // current config
  std::function<std::shared_ptr<const Directory>()> directory;    // current directory
  std::chrono::system_clock::time_point started;
};

}  // namespace holdd
