// sparq: pruned transformer layers on fast sparse kernels, and the BERT-family encoder that runs
// on them. The whole public API.
#pragma once

#include "sparq/device.hpp"
#include "sparq/error.hpp"
#include "sparq/linear.hpp"
#include "sparq/models/bert_encoder.hpp"
#include "sparq/models/bpe_tokenizer.hpp"
#include "sparq/models/input_thresholds.hpp"
#include "sparq/models/llama_model.hpp"
#include "sparq/models/sampler.hpp"
#include "sparq/models/spm_tokenizer.hpp"
#include "sparq/models/tokenizer.hpp"
#include "sparq/models/wordpiece.hpp"
#include "sparq/types.hpp"

namespace sparq {
// What sparq's own kernels run on here: "avx512_vnni" (int8 on AVX-512 VNNI, fp32 / bf16 on
// AVX-512F), "avx2", "reference", or, where the int8 and float families differ (AVX-512 without
// VNNI, or a SPARQ_MAX_ISA cap of avx512), "int8 avx2, float avx512".
const char* cpu_isa_name();
// The CPU features sparq detected (CPUID with the register state the OS enabled in XCR0; AMX only
// once Linux granted the tile data permission), space-separated in /proc/cpuinfo's spelling,
// e.g. "avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16"; "none" without AVX2.
const char* cpu_features_name();
}  // namespace sparq
