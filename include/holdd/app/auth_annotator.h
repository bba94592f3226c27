#pragma once
// AuthAnnotator plugs the edge verdicts into intake: at the end of DATA it runs
// SPF, DKIM and DMARC (auth::AuthVerifier, on its own thread pool) on the message
// as received, then removes any Authentication-Results: that forges our
// authserv-id, and hands back our own Authentication-Results: to prepend.
//
// SIGHUP replaces the verifier ([auth] is reloaded): messages whose verification
// has started finish with the old one (each holds a reference), later ones use
// the new one; the old verifier's thread pool goes away with its last message.
#include <memory>
#include <mutex>

#include "holdd/auth/auth_verifier.h"
#include "holdd/smtp/annotator.h"

namespace holdd {

class AuthAnnotator : public smtp::MessageAnnotator {
 public:
  explicit AuthAnnotator(std::shared_ptr<auth::AuthVerifier> verifier)
      : verifier_(std::move(verifier)) {}

  boost::asio::awaitable<std::string> annotate(const smtp::ClientInfo& client,
                                               const smtp::Envelope& envelope,
                                               std::string& content) override;

  void replace(std::shared_ptr<auth::AuthVerifier> verifier);

 private:
  std::shared_ptr<auth::AuthVerifier> current() const;

  mutable std::mutex mu_;
  std::shared_ptr<auth::AuthVerifier> verifier_;
};

}  // namespace holdd
