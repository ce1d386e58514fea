#!/usr/bin/env python3
"""llama.cpp (through llama-cpp-python) on a GGUF file, timed the way sparq-eval times a decoder:
one prefill of --prompt-tokens random ids in a single batch (pp), then --gen-tokens decode steps
that each feed back the argmax (tg), from an empty cache each run; medians over --iters runs after
--warmup. Prints one JSON line (keys as sparq-eval's: pp_tokens_per_s, tg_tokens_per_s, ...).

    llamacpp_bench.py MODEL.gguf --threads 2 --prompt-tokens 512 --gen-tokens 128 --iters 3
    llamacpp_bench.py MODEL.gguf --greedy-ids 5,9,100 --max-tokens 16   # token ids, for a check
"""
import argparse
import json
import os
import random
import statistics
import sys
import time

import numpy as np
import llama_cpp


def load(path, threads, n_ctx, n_batch):
    return llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
                           n_threads=threads, n_threads_batch=threads, logits_all=False,
                           use_mmap=True, verbose=False)


def argmax_last(llm):
    # Llama.eval no longer keeps the logits (unless logits_all): read the last row from llama.cpp.
    row = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return int(np.argmax(np.ctypeslib.as_array(row, shape=(llm.n_vocab(),))))


def run_once(llm, prompt, gen):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    for _ in range(gen):
        llm.eval([argmax_last(llm)])
    t2 = time.perf_counter()
    return len(prompt) / (t1 - t0), gen / (t2 - t1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--greedy-ids", help="comma-separated prompt ids: print the greedy "
                    "continuation's ids instead of timing")
    ap.add_argument("--max-tokens", type=int, default=16)
    args = ap.parse_args()

    if args.greedy_ids:
        prompt = [int(x) for x in args.greedy_ids.split(",")]
        llm = load(args.model, args.threads, len(prompt) + args.max_tokens, 512)
        llm.eval(prompt)
        out = []
        for _ in range(args.max_tokens):
            out.append(argmax_last(llm))
            llm.eval([out[-1]])
        print(",".join(map(str, out)))
        return

    llm = load(args.model, args.threads, args.prompt_tokens + args.gen_tokens,
               args.prompt_tokens)
    rng = random.Random(args.seed)
    prompt = [rng.randrange(llm.n_vocab()) for _ in range(args.prompt_tokens)]
    pp, tg = [], []
    for i in range(args.warmup + args.iters):
        print(f"\rllamacpp_bench.py: run {i + 1}/{args.warmup + args.iters}", end="",
              file=sys.stderr, flush=True)
        p, t = run_once(llm, prompt, args.gen_tokens)
        if i >= args.warmup:
            pp.append(p)
            tg.append(t)
    print(file=sys.stderr)
    print(json.dumps({"model": args.model, "runtime": f"llama.cpp (llama-cpp-python "
                      f"{llama_cpp.__version__})", "threads": args.threads,
                      "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
                      "iters": args.iters, "pp_tokens_per_s": statistics.median(pp),
                      "tg_tokens_per_s": statistics.median(tg),
                      "system_info": llama_cpp.llama_print_system_info().decode().strip()}))


if __name__ == "__main__":
    main()
