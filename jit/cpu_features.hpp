// CPU features read from CPUID (and XGETBV for the OS-enabled register state), never from the
// vendor string, and the ISA levels sparq's kernels dispatch on.
#pragma once

namespace sparq::jit {

struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_vnni = false;
  bool avx512_bf16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
};

// Detected once per process.
const CpuFeatures& cpu_features();

// Kernel ISA levels, lowest first.
enum class Isa { reference = 0, avx2 = 1, avx512_vnni = 2 };
const char* isa_name(Isa isa);

// The best ISA the int8 block-sparse kernels can use here. The environment variable
// SPARQ_MAX_ISA=reference|avx2|avx512_vnni caps it (to test fallbacks on a bigger CPU).
Isa best_int8_isa();
bool isa_available(Isa isa);

}  // namespace sparq::jit
