// sparq's error types. Every invalid argument, unsupported request or malformed input throws one
// of these with a message that names what was wrong and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace sparq {

// An argument is invalid (null pointer, non-positive size, shape mismatch, a pattern the weight
// does not satisfy).
class InvalidArgument : public std::invalid_argument {
 public:
  explicit InvalidArgument(const std::string& what) : std::invalid_argument("sparq: " + what) {}
};

// The request is valid but sparq has no implementation for it yet (dtype, pattern, ISA).
class NotSupported : public std::runtime_error {
 public:
  explicit NotSupported(const std::string& what) : std::runtime_error("sparq: " + what) {}
};

// A model file (safetensors, config.json, GGUF) is missing, unreadable, truncated or malformed;
// the message names the file and, where it applies, the tensor or key.
class ModelFileError : public std::runtime_error {
 public:
  explicit ModelFileError(const std::string& what) : std::runtime_error("sparq: " + what) {}
};

}  // namespace sparq
