#include "holdd/app/auth_annotator.h"

#include <utility>

namespace holdd {

boost::asio::awaitable<std::string> AuthAnnotator::annotate(const smtp::ClientInfo& client,
                                                            const smtp::Envelope& envelope,
                                                            std::string& content) {
  // One verifier for the whole message, even if a reload replaces it meanwhile.
  std::shared_ptr<auth::AuthVerifier> verifier = current();
  auth::AuthInput input;
  input.client_ip = client.ip;
  input.helo = client.helo;
  input.mail_from = envelope.sender;
  input.content = content;
  // Verify first: a DKIM signature may cover the very header we then remove.
  std::string header = co_await verifier->verify(input);
  verifier->remove_forged_results(content);
  co_return header;
}

void AuthAnnotator::replace(std::shared_ptr<auth::AuthVerifier> verifier) {
  std::shared_ptr<auth::AuthVerifier> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(verifier_, std::move(verifier));
  }
  // `old` is released here, outside the lock; if no message holds it any more its
  // destructor waits for its (idle) thread pool.
}

std::shared_ptr<auth::AuthVerifier> AuthAnnotator::current() const {
  std::lock_guard lock(mu_);
  return verifier_;
}

}  // namespace holdd
