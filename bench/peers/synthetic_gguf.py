#!/usr/bin/env python3
"""Writes a synthetic Llama GGUF of a size sparq names (llama-1b, llama-7b: the shapes of
bench/synthetic_models.cpp) directly in Q8_0, one tensor at a time, without holding the model in
memory: each block is a random fp16 scale near 0.02 / 127 and 32 random int8 values, the norms
are ones (F32). It exists to check that sparq loads a large model in bounded memory
(docs/models.md): a 7B file is 7.2 GB and the script's own peak stays under 1 GB.

    $(bench/peers/venv.sh) bench/peers/synthetic_gguf.py llama-7b OUT.gguf [--seed 1]
"""
import argparse
import os
import sys

import gguf
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_gguf import add_header  # noqa: E402

# vocab, hidden, layers, intermediate, heads, kv heads, positions
SHAPES = {
    "llama-1b": (32000, 2048, 22, 5632, 32, 4, 2048),
    "llama-7b": (32000, 4096, 32, 11008, 32, 32, 4096),
}
Q8_0 = gguf.GGMLQuantizationType.Q8_0
F32 = gguf.GGMLQuantizationType.F32
BLOCK, BLOCK_BYTES = 32, 34  # Q8_0: fp16 scale + 32 int8


def q8_0_matrix(rng, rows, cols):
    """The Q8_0 bytes of a rows x cols matrix of random int8 values and scales."""
    blocks_per_row = cols // BLOCK
    out = np.empty((rows, blocks_per_row, BLOCK_BYTES), dtype=np.uint8)
    scales = (rng.uniform(0.5, 1.5, size=(rows, blocks_per_row)) * 0.02 / 127).astype(np.float16)
    out[:, :, :2] = scales.view(np.uint8).reshape(rows, blocks_per_row, 2)
    out[:, :, 2:] = rng.integers(-127, 128, size=(rows, blocks_per_row, BLOCK),
                                 dtype=np.int8).view(np.uint8)
    return out.reshape(rows, blocks_per_row * BLOCK_BYTES)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=sorted(SHAPES))
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    vocab, hidden, layers, inter, heads, kv_heads, positions = SHAPES[args.model]
    head_dim = hidden // heads

    w = gguf.GGUFWriter(args.out, "llama")
    add_header(w, f"sparq synthetic {args.model}", vocab=vocab, hidden=hidden, layers=layers,
               inter=inter, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
               positions=positions, rope_theta=10000.0, eps=1e-5,
               file_type=gguf.LlamaFileType.MOSTLY_Q8_0)

    # (name, rows, cols) in file order; cols 0: a norm of `rows` values.
    tensors = [("token_embd.weight", vocab, hidden)]
    for n in range(layers):
        b = f"blk.{n}."
        tensors += [(b + "attn_norm.weight", hidden, 0), (b + "attn_q.weight", heads * head_dim, hidden),
                    (b + "attn_k.weight", kv_heads * head_dim, hidden),
                    (b + "attn_v.weight", kv_heads * head_dim, hidden),
                    (b + "attn_output.weight", hidden, heads * head_dim),
                    (b + "ffn_norm.weight", hidden, 0), (b + "ffn_gate.weight", inter, hidden),
                    (b + "ffn_up.weight", inter, hidden), (b + "ffn_down.weight", hidden, inter)]
    tensors += [("output_norm.weight", hidden, 0), ("output.weight", vocab, hidden)]
    for name, rows, cols in tensors:
        if cols == 0:
            w.add_tensor_info(name, (rows,), np.dtype(np.float32), rows * 4, raw_dtype=F32)
        else:
            # GGUF shapes of quantized tensors are given in bytes per row by the writer's caller.
            w.add_tensor_info(name, (rows, cols // BLOCK * BLOCK_BYTES), np.dtype(np.uint8),
                              rows * cols // BLOCK * BLOCK_BYTES, raw_dtype=Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(args.seed)
    for name, rows, cols in tensors:
        if cols == 0:
            w.write_tensor_data(np.ones(rows, dtype=np.float32))
            continue
        # One tensor in memory at a time (the largest, the embeddings, 139 MB at 7B).
        w.write_tensor_data(q8_0_matrix(rng, rows, cols))
    w.close()
    print(f"synthetic_gguf.py: wrote {args.out} ({args.model}, Q8_0)", file=sys.stderr)


if __name__ == "__main__":
    main()
