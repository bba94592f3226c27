#pragma once
// OutputCapture: what holdctl's code writes to std::cout and std::cerr while it
// lives, instead of the terminal. doctest reports failed assertions on std::cout
// too: assert after the capture ends, or the report is captured with the rest.
#include <iostream>
#include <sstream>
#include <string>

namespace holdd::cli {

class OutputCapture {
 public:
  OutputCapture() : out_(std::cout.rdbuf(stdout_.rdbuf())), err_(std::cerr.rdbuf(stderr_.rdbuf())) {}
  ~OutputCapture() {
    std::cout.rdbuf(out_);
    std::cerr.rdbuf(err_);
  }
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  std::string out() const { return stdout_.str(); }
  std::string err() const { return stderr_.str(); }

 private:
  std::ostringstream stdout_, stderr_;
  std::streambuf* out_;
  std::streambuf* err_;
};

}  // namespace holdd::cli
