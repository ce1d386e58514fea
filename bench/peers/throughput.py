#!/usr/bin/env python3
"""Throughput under a latency bound for ONNX Runtime and DeepSparse, as sparq-eval --latency-bound
measures sparq: a stream of REQUESTS sequences served by N instances of K threads each, for every
(N, K) with N x K <= cores (powers of two and the largest that fit); one JSON line per point.

  throughput.py --runtime ort-fp32|ort-int8 --onnx MODEL.onnx --seq 128 --cores 2 --requests 200
  throughput.py --runtime deepsparse --onnx MODEL.onnx ...   (in DeepSparse's own venv)

ONNX Runtime: N InferenceSessions (intra-op K threads, sequential execution), each driven by its
own Python thread (run() releases the GIL). DeepSparse: one engine over N x K cores with the
multi-stream scheduler and N streams, driven by N threads at once.
"""
import argparse
import json
import threading
import time

import numpy as np

from peers import percentile  # stdlib-only module: importable from DeepSparse's venv too


def search_points(cores):
    def powers_up_to(limit):
        v, p = [], 1
        while p <= limit:
            v.append(p)
            p *= 2
        if v[-1] != limit:
            v.append(limit)
        return v

    return [(n, k) for k in powers_up_to(max(1, cores)) for n in powers_up_to(max(1, cores // k))]


def feeds(names, seq, vocab, seed):
    rng = np.random.default_rng(seed)
    all_feeds = {
        "input_ids": rng.integers(0, vocab, size=(1, seq), dtype=np.int64),
        "attention_mask": np.ones((1, seq), dtype=np.int64),
        "token_type_ids": np.zeros((1, seq), dtype=np.int64),
    }
    return {n: all_feeds[n] for n in names}


def serve(runners, requests, warmup):
    """runners[i]() serves one request on instance i; returns (seconds, latencies in ms)."""
    for run in runners:
        for _ in range(warmup):
            run()
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies = [[] for _ in runners]
    barrier = threading.Barrier(len(runners) + 1)

    def worker(i):
        barrier.wait()
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            t0 = time.perf_counter()
            runners[i]()
            latencies[i].append((time.perf_counter() - t0) * 1e3)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(runners))]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, [x for l in latencies for x in l]


def ort_runners(path, n, k, seq, seed):
    import onnxruntime as ort

    runners = []
    for i in range(n):
        so = ort.SessionOptions()
        so.intra_op_num_threads = k
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        names = [x.name for x in s.get_inputs()]
        f = feeds(names, seq, 1000, seed + i)
        runners.append(lambda s=s, f=f: s.run(None, f))
    return runners, f"onnxruntime {ort.__version__}"


def deepsparse_runners(path, n, k, seq, seed):
    import deepsparse
    import onnx

    names = [i.name for i in onnx.load(path, load_external_data=False).graph.input]
    engine = deepsparse.compile_model(
        path, batch_size=1, num_cores=n * k, num_streams=n, scheduler="multi_stream",
        input_shapes=[[1, seq]] * len(names))
    runners = []
    for i in range(n):
        f = feeds(names, seq, 1000, seed + i)
        inputs = [f[x] for x in names]
        runners.append(lambda inputs=inputs: engine.run(inputs))
    return runners, f"deepsparse {deepsparse.__version__}, multi-stream scheduler"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", required=True, choices=["ort-fp32", "ort-int8", "deepsparse"])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--cores", type=int, required=True)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--latency-bound", type=float, default=0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for n, k in search_points(args.cores):
        make = deepsparse_runners if args.runtime == "deepsparse" else ort_runners
        runners, note = make(args.onnx, n, k, args.seq, args.seed)
        seconds, ms = serve(runners, args.requests, args.warmup)
        line = {"runtime": args.runtime, "instances": n, "threads_per_instance": k,
                "requests": args.requests, "seconds": seconds,
                "throughput": args.requests / seconds, "p50_ms": percentile(ms, 0.5),
                "p90_ms": percentile(ms, 0.9), "p99_ms": percentile(ms, 0.99), "note": note}
        if args.latency_bound > 0:
            line["latency_bound_ms"] = args.latency_bound
            line["within_bound"] = line["p90_ms"] <= args.latency_bound
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
