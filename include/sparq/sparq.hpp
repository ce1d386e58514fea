// sparq: pruned transformer layers on fast sparse kernels, and the BERT-family encoder that runs
// on them. The whole public API.
#pragma once

#include "sparq/device.hpp"
#include "sparq/error.hpp"
#include "sparq/linear.hpp"
#include "sparq/models/bert_encoder.hpp"
#include "sparq/models/bpe_tokenizer.hpp"
#include "sparq/models/llama_model.hpp"
#include "sparq/models/sampler.hpp"
#include "sparq/models/wordpiece.hpp"
#include "sparq/types.hpp"

namespace sparq {
// The name of the ISA level sparq's kernels dispatch to on this CPU, e.g. "avx512_vnni" or "avx2".
const char* cpu_isa_name();
}  // namespace sparq
