#include "models/config_json.hpp"

#include <fstream>
#include <sstream>

#include "sparq/error.hpp"

namespace sparq::models::config_json {

void fail(const std::string& origin, const std::string& what) {
  throw ModelFileError(origin + ": " + what);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ModelFileError(path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json parse_object(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(origin, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(origin, "not a JSON object");
  return j;
}

int64_t positive(const nlohmann::json& j, const std::string& key, const std::string& origin,
                 int64_t max) {
  if (!j.contains(key)) fail(origin, "no '" + key + "'");
  const auto& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > max)
    fail(origin,
         "'" + key + "' is " + v.dump() + "; expected an integer in 1.." + std::to_string(max));
  return v.get<int64_t>();
}

double number(const nlohmann::json& j, const std::string& key, const std::string& origin, double lo,
              double hi, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (!v.is_number() || !(v.get<double>() > lo) || v.get<double>() > hi)
    fail(origin, "'" + key + "' is " + v.dump() + "; expected a number in (" + std::to_string(lo) +
                     ", " + std::to_string(hi) + "]");
  return v.get<double>();
}

}  // namespace sparq::models::config_json
