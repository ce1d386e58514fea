// Reading a Hugging Face config.json: the text parsed, and typed fields checked against ranges,
// errors naming the file ("origin") and key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace sparq::models::config_json {

[[noreturn]] void fail(const std::string& origin, const std::string& what);
std::string read_file(const std::string& path);
// The parsed object; ModelFileError for invalid JSON or another JSON type.
nlohmann::json parse_object(const std::string& text, const std::string& origin);
// An integer in 1..max, required.
int64_t positive(const nlohmann::json& j, const std::string& key, const std::string& origin,
                 int64_t max);
// Runs f, turning a JSON value of a type the explicit checks did not expect (nlohmann's
// type_error and kin) into a ModelFileError naming the file: readers of outside files never let
// the JSON library's own exceptions escape (found by fuzzing).
template <typename F>
auto guarded(const std::string& origin, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nlohmann::json::exception& e) {
    fail(origin, std::string("a value of an unexpected type: ") + e.what());
  }
}
// A number in (lo, hi], or `fallback` when the key is absent (or null).
double number(const nlohmann::json& j, const std::string& key, const std::string& origin, double lo,
              double hi, double fallback);

}  // namespace sparq::models::config_json
