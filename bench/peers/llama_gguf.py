#!/usr/bin/env python3
"""Writes a Llama Hugging Face folder that sparq saved (sparq-eval --synthetic llama-1b --save DIR),
or a Qwen2 one (tests/fixtures/qwen2_tiny), as a GGUF file llama.cpp loads, with the gguf package:
every projection, the token embeddings and the head in one type (F32, F16, Q8_0 or Q4_0, like
llama-quantize --pure), the norms and Qwen2's q/k/v biases in F32.

For Llama, llama.cpp's converter stores attn_q / attn_k with each head's two rotary halves
interleaved; the same permutation is applied here, so llama.cpp computes the model sparq
computes (Qwen2's GGUF keeps Hugging Face's order: llama.cpp rotates it NeoX-style). The synthetic
models have no tokenizer: a byte-level BPE vocabulary of the config's size is made up (the 256
GPT-2 byte symbols, then byte pairs with their merges, the last id an end-of-text control token),
which is enough for llama.cpp and sparq to load the file; the benchmarks feed token ids.

    llama_gguf.py DIR OUT.gguf --type q8_0
"""
import argparse
import json
import os
import sys

import numpy as np
import gguf
from safetensors.numpy import safe_open


def byte_symbols():
    """GPT-2's printable stand-ins for the 256 byte values, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(
        range(0xAE, 0xFF + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def made_up_vocab(size):
    if size < 258:
        sys.exit(f"llama_gguf.py: a vocabulary of {size} is too small for the made-up BPE one")
    symbols = byte_symbols()
    tokens, merges = list(symbols), []
    for a in symbols:
        for b in symbols:
            if len(tokens) == size - 1:
                break
            tokens.append(a + b)
            merges.append(f"{a} {b}")
    tokens.append("<|endoftext|>")
    types = [gguf.TokenType.NORMAL] * (size - 1) + [gguf.TokenType.CONTROL]
    return tokens, types, merges


def rotary_interleave(w, heads):
    """Hugging Face's rotate-half row order -> llama.cpp's interleaved pairs, per head."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


QUANT = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
    "q4_0": gguf.GGMLQuantizationType.Q4_0,
}
FILE_TYPE = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}


def add_header(w, name, *, vocab, hidden, layers, inter, heads, kv_heads, head_dim, positions,
               rope_theta, eps, file_type):
    """The model's metadata and the made-up byte-level BPE vocabulary (see the module text)."""
    w.add_name(name)
    w.add_context_length(positions)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(rope_theta)
    w.add_layer_norm_rms_eps(eps)
    w.add_vocab_size(vocab)
    w.add_file_type(file_type)
    tokens, types, merges = made_up_vocab(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 1)
    w.add_eos_token_id(len(tokens) - 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="config.json + model.safetensors (LlamaForCausalLM names)")
    ap.add_argument("out", help="the GGUF file to write")
    ap.add_argument("--type", choices=sorted(QUANT), default="q8_0")
    args = ap.parse_args()

    with open(os.path.join(args.folder, "config.json")) as f:
        c = json.load(f)
    arch = c.get("model_type")
    if arch not in ("llama", "qwen2"):
        sys.exit(f"llama_gguf.py: {args.folder}: model_type {arch!r}, not llama or qwen2")
    rope = c.get("rope_parameters") or {}
    heads, kv_heads = c["num_attention_heads"], c.get("num_key_value_heads",
                                                      c["num_attention_heads"])
    hidden = c["hidden_size"]
    head_dim = c.get("head_dim") or hidden // heads
    qtype = QUANT[args.type]

    if c.get("rope_scaling") or rope.get("rope_type", "default") != "default":
        sys.exit("llama_gguf.py: rope scaling is not exported (the synthetic models have none)")
    w = gguf.GGUFWriter(args.out, arch)
    add_header(w, f"sparq {arch}", vocab=c["vocab_size"], hidden=hidden,
               layers=c["num_hidden_layers"], inter=c["intermediate_size"], heads=heads,
               kv_heads=kv_heads, head_dim=head_dim, positions=c["max_position_embeddings"],
               rope_theta=rope.get("rope_theta", c.get("rope_theta", 10000.0)),
               eps=c.get("rms_norm_eps", 1e-6), file_type=FILE_TYPE[args.type])

    names = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
                 "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                 "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    with safe_open(os.path.join(args.folder, "model.safetensors"), "np") as st:
        for name in st.keys():
            t = st.get_tensor(name).astype(np.float32)
            if name in names:
                out = names[name]
            else:
                parts = name.split(".")  # model.layers.N.<module...>.weight|bias
                if parts[:2] != ["model", "layers"] or parts[-1] not in ("weight", "bias"):
                    sys.exit(f"llama_gguf.py: unexpected tensor {name!r}")
                out = f"blk.{parts[2]}.{per_layer['.'.join(parts[3:-1])]}.{parts[-1]}"
                if arch == "llama" and name.endswith("q_proj.weight"):
                    t = rotary_interleave(t, heads)
                elif arch == "llama" and name.endswith("k_proj.weight"):
                    t = rotary_interleave(t, kv_heads)
            if t.ndim == 1:
                w.add_tensor(out, t)
            else:
                w.add_tensor(out, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"llama_gguf.py: wrote {args.out} ({args.type.upper()})", file=sys.stderr)


if __name__ == "__main__":
    main()
