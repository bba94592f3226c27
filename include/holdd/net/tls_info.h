#pragma once
// The TLS facts of a connection once its handshake completed: for Received:
// (RFC 3848 ESMTPS), the session log and the upstream client's log.
#include <string>

namespace holdd {

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
};

}  // namespace holdd
