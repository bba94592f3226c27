#include "holdd/net/io_error.h"

#include <string>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

namespace holdd {

namespace net = boost::asio;

bool is_eof(const boost::system::error_code& ec) {
  return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
}

bool is_cancelled(const boost::system::error_code& ec) {
  return ec == net::error::operation_aborted;
}

Status from_io_error(const boost::system::error_code& ec, std::string_view context,
                     std::string_view detail) {
  if (!ec) return Status::ok();
  std::string text(context);
  text += ": ";
  text += ec.message();
  if (!detail.empty()) {
    text += " (";
    text += detail;
    text += ')';
  }
  if (is_cancelled(ec)) return Status::cancelled(std::move(text));
  return Status::temporary(std::move(text));
}

}  // namespace holdd
