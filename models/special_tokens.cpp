#include "models/special_tokens.hpp"

#include <algorithm>

#include "sparq/error.hpp"

namespace sparq::models {

SpecialTokens special_tokens(const std::vector<std::string>& tokens,
                             const std::vector<int32_t>& ids, const std::string& origin) {
  SpecialTokens specials;
  for (int32_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
      throw ModelFileError(origin + ": special token id " + std::to_string(id) + " out of range");
    if (!tokens[static_cast<size_t>(id)].empty())
      specials.emplace_back(tokens[static_cast<size_t>(id)], id);
  }
  std::sort(specials.begin(), specials.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return specials;
}

}  // namespace sparq::models
