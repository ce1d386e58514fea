// libFuzzer harness: the safetensors reader on arbitrary bytes, then every tensor widened to fp32.
#include <cstddef>
#include <cstdint>

#include "fuzz_input.hpp"
#include "src/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sparq::fuzz::MemoryFile file(data, size);
  sparq::fuzz::refusals_allowed([&] {
    const auto st = sparq::SafetensorsFile::open(file.path());
    for (const auto& name : st.names()) {
      const auto& t = st.tensor(name);
      sparq::fuzz::refusals_allowed([&] { (void)t.to_f32(); });
    }
  });
  return 0;
}
