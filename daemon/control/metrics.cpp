#include "holdd/control/metrics.h"

#include <cstdio>

#include "holdd/smtp/memory_budget.h"

namespace holdd {

namespace {

// Bucket bounds print as written in kBounds ("0.0025"); sums keep microseconds.
std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

class Exposition {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const std::string& name, const std::string& labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(const std::string& name, const std::string& labels, uint64_t v) {
    sample(name, labels, std::to_string(v));
  }
  void sample_i(const std::string& name, const std::string& labels, int64_t v) {
    sample(name, labels, std::to_string(v));
  }
  // A family with one unlabelled sample.
  void single(const char* name, const char* type, const char* help, uint64_t v) {
    family(name, type, help);
    sample(name, "", v);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string render_metrics(const DaemonSnapshot& s) {
  Exposition m;
  const IntakeStats& in = s.intake;

  m.single("holdd_connections_total", "counter", "SMTP connections accepted.", in.connections_total);
  m.single("holdd_connections_refused_total", "counter",
           "SMTP connections refused with 421 (max_connections, max_connections_per_ip).",
           in.connections_refused);
  m.family("holdd_smtp_replies_total", "counter", "SMTP replies sent, by class.");
  for (size_t c = 2; c <= 5; ++c) {
    m.sample("holdd_smtp_replies_total", "class=\"" + std::to_string(c) + "xx\"",
             in.replies_by_class[c]);
  }
  m.single("holdd_messages_accepted_total", "counter", "Messages accepted (250 after fsync).",
           in.messages_accepted);
  m.single("holdd_bytes_accepted_total", "counter", "Bytes of accepted messages.", in.bytes_accepted);
  m.single("holdd_recipients_accepted_total", "counter", "Recipients of accepted messages.",
           in.recipients_accepted);
  m.family("holdd_recipient_verify_total", "counter",
           "RCPTs for unlisted addresses answered by recipients = \"verify\", by verdict.");
  m.sample("holdd_recipient_verify_total", "result=\"known\"", in.verify.known);
  m.sample("holdd_recipient_verify_total", "result=\"unknown\"", in.verify.unknown);
  m.sample("holdd_recipient_verify_total", "result=\"no_answer\"", in.verify.no_answer);
  m.single("holdd_recipient_verify_probes_total", "counter",
           "Addresses asked of the upstreams (the rest came from the cache).", in.verify.probes);
  m.single("holdd_recipient_verify_busy_total", "counter",
           "RCPTs answered 450 because every probe slot stayed busy.", in.verify.busy);

  m.family("holdd_relayed_total", "counter", "Queue entries accepted by an upstream.");
  m.sample("holdd_relayed_total", "upstream=\"old\"", s.relay.delivered_old);
  m.sample("holdd_relayed_total", "upstream=\"new\"", s.relay.delivered_new);
  m.family("holdd_relayed_bytes_total", "counter", "Bytes accepted by an upstream.");
  m.sample("holdd_relayed_bytes_total", "upstream=\"old\"", s.relay.bytes_old);
  m.sample("holdd_relayed_bytes_total", "upstream=\"new\"", s.relay.bytes_new);
  m.single("holdd_deferred_total", "counter", "Delivery attempts deferred (4xx or connection failure).",
           s.relay.deferred);
  m.single("holdd_parked_total", "counter", "Queue entries parked after a 5xx from an upstream.",
           s.relay.parked);

  m.single("holdd_queued_messages", "gauge", "Queue entries (one per message and mailbox).",
           s.queued.messages);
  m.single("holdd_queued_bytes", "gauge", "Bytes of queue entries.", s.queued.bytes);
  m.single("holdd_held_messages", "gauge", "Queue entries of mailboxes in state held.",
           s.held.messages);
  m.single("holdd_held_bytes", "gauge", "Bytes of queue entries of held mailboxes.", s.held.bytes);
  m.family("holdd_held_oldest_age_seconds", "gauge", "Age of the oldest held message (0: none).");
  m.sample_i("holdd_held_oldest_age_seconds", "",
             s.held.messages > 0 ? s.age_seconds(s.held.oldest_arrival_us) : 0);
  m.single("holdd_parked_messages", "gauge", "Queue entries parked now (holdctl retry requeues).",
           s.parked);
  m.single("holdd_deferred_messages", "gauge", "Queue entries tried at least once, not parked.",
           s.deferred);
  m.single("holdd_late_messages", "gauge",
           "Deliverable entries waiting longer than [delivery] warn_after since release.", s.late);
  m.family("holdd_mailboxes", "gauge", "Mailboxes per state (listed or seen).");
  for (MailboxState st : {MailboxState::kOld, MailboxState::kHeld, MailboxState::kMigrated}) {
    m.sample("holdd_mailboxes", "state=\"" + std::string(to_string(st)) + "\"", s.mailboxes_in(st));
  }
  m.single("holdd_connections_open", "gauge", "SMTP connections open now.", in.connections_open);
  if (const smtp::MessageMemoryBudget* mem = in.message_memory) {
    m.single("holdd_message_memory_bytes", "gauge",
             "Message content in RAM, counted twice (its peak while stored).", mem->used());
    m.single("holdd_message_memory_limit_bytes", "gauge", "[server] max_message_memory.", mem->limit());
    m.single("holdd_message_memory_refusals_total", "counter",
             "Messages refused with 452 4.3.1 for want of message memory.", mem->refusals());
  }
  m.single("holdd_relay_in_flight", "gauge", "Deliveries in progress.", s.in_flight);
  m.single("holdd_relay_removals_pending", "gauge",
           "Entries accepted by an upstream whose removal is not committed yet.", s.removal_pending);
  m.single("holdd_paused", "gauge", "1 while relaying is paused (holdctl pause).", s.paused ? 1 : 0);
  m.single("holdd_spool_map_used_bytes", "gauge", "Bytes of the LMDB map in use.", s.spool.map_used);
  m.single("holdd_spool_map_size_bytes", "gauge", "Current size of the LMDB map.", s.spool.map_size);
  m.single("holdd_disk_free_bytes", "gauge", "Free bytes on the spool's file system.",
           s.spool.disk_free);
  m.family("holdd_last_relay_timestamp_seconds", "gauge",
           "Unix time of the last delivery to an upstream (0: never).");
  m.sample_i("holdd_last_relay_timestamp_seconds", "upstream=\"old\"",
             s.last_relay_us[static_cast<size_t>(UpstreamKind::kOld)] / 1000000);
  m.sample_i("holdd_last_relay_timestamp_seconds", "upstream=\"new\"",
             s.last_relay_us[static_cast<size_t>(UpstreamKind::kNew)] / 1000000);
  m.single("holdd_old_forwarded_total", "counter",
           "Messages the old server forwarded to holdd ([upstream.old] forwarders).", s.forwarded_by_old);
  m.single("holdd_old_forwarded_last_timestamp_seconds", "gauge",
           "Unix time the old server last forwarded a message (0: never).",
           static_cast<uint64_t>(s.last_forwarded_by_old_us / 1000000));
  m.family("holdd_start_time_seconds", "gauge", "Unix time the daemon started.");
  m.sample_i("holdd_start_time_seconds", "", s.started_us / 1000000);

  if (s.cluster.enabled) {
    // Several nodes: every node exports these with its `node` label, so a
    // dashboard over all nodes sees each one's view of the shared states.
    const std::string node = "node=\"" + s.cluster.node + "\"";
    m.family("holdd_cluster_database_up", "gauge", "1 while this node is connected to PostgreSQL.");
    m.sample("holdd_cluster_database_up", node, s.cluster.connected ? 1 : 0);
    m.family("holdd_cluster_mailboxes", "gauge", "Mailboxes per shared state, as this node last applied them.");
    for (size_t i = 0; i < std::size(cluster::kSharedStates); ++i) {
      m.sample("holdd_cluster_mailboxes", node + ",state=\"" + std::string(cluster::kSharedStates[i]) + "\"",
               s.cluster.mailboxes[i]);
    }
    m.family("holdd_cluster_applied_change", "gauge", "The last shared state change this node applied.");
    m.sample("holdd_cluster_applied_change", node, s.cluster.applied_change);
    m.family("holdd_cluster_sync_age_seconds", "gauge",
             "Seconds since this node last synced with PostgreSQL (-1: never).");
    m.sample("holdd_cluster_sync_age_seconds", node, number(s.cluster.seconds_since_sync));
    m.family("holdd_cluster_releases_replaying", "gauge",
             "Releasing mailboxes whose backlog on this node is not done yet.");
    m.sample("holdd_cluster_releases_replaying", node, s.cluster.releasing_here);
  }

  const LatencyHistogram& h = in.intake_latency;
  m.family("holdd_intake_latency_seconds", "histogram",
           "Time from the end of DATA to the 250 reply (includes the fsync).");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
    cumulative += h.buckets[i];
    m.sample("holdd_intake_latency_seconds_bucket", "le=\"" + number(LatencyHistogram::kBounds[i]) + "\"",
             cumulative);
  }
  m.sample("holdd_intake_latency_seconds_bucket", "le=\"+Inf\"", h.count);
  m.sample("holdd_intake_latency_seconds_sum", "", number(h.sum));
  m.sample("holdd_intake_latency_seconds_count", "", h.count);
  return m.take();
}

}  // namespace holdd
