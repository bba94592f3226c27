#pragma once
// MessageAnnotator is the per-message seam at the end of DATA: it sees the
// client, the envelope and the content (CRLF, unstuffed, without holdd's
// headers) and returns header fields to prepend right below our Received:.
// The edge-trust work plugs SPF/DKIM/DMARC Authentication-Results: (RFC 8601)
// in here; without an annotator the session adds nothing.
//
// Called on the io_context's thread; it may suspend (DNS on a thread pool) but
// must not block. It must not throw: trouble is expressed in its result (e.g.
// "spf=temperror"), because a message is never refused for it.
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "holdd/smtp/client_info.h"
#include "holdd/smtp/envelope.h"

namespace holdd::smtp {

class MessageAnnotator {
 public:
  virtual ~MessageAnnotator() = default;
  // Header fields, each ending in CRLF (possibly folded); "" for none. It may
  // also remove header fields from `content` that claim to be ours (RFC 8601
  // section 5: an Authentication-Results: with our authserv-id is a forgery),
  // after it has looked at the content as received.
  virtual boost::asio::awaitable<std::string> annotate(const ClientInfo& client,
                                                       const Envelope& envelope,
                                                       std::string& content) = 0;
};

}  // namespace holdd::smtp
