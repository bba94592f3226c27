#include "holdd/app/auth_annotator.h"

namespace holdd {

boost::asio::awaitable<std::string> AuthAnnotator::annotate(const smtp::ClientInfo& client,
                                                            const smtp::Envelope& envelope,
                                                            std::string& content) {
  auth::AuthInput input;
  input.client_ip = client.ip;
  input.helo = client.helo;
  input.mail_from = envelope.sender;
  input.content = content;
  // Verify first: a DKIM signature may cover the very header we then remove.
  std::string header = co_await verifier_->verify(input);
  verifier_->remove_forged_results(content);
  co_return header;
}

}  // namespace holdd
