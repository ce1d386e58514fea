// Where scripts/fetch-models.sh puts the real test models (the same rules as the script).
#pragma once

#include <cstdlib>
#include <filesystem>

namespace sparq::test {

inline std::filesystem::path model_cache_dir() {
  namespace fs = std::filesystem;
  if (const char* c = std::getenv("SPARQ_MODEL_CACHE")) return c;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME")) return fs::path(xdg) / "sparq" / "models";
  if (const char* home = std::getenv("HOME")) return fs::path(home) / ".cache" / "sparq" / "models";
  return {};
}

}  // namespace sparq::test
