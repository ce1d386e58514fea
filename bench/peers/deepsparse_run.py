#!/usr/bin/env python3
"""Times an ONNX BERT export on Neural Magic DeepSparse; run by peers.py in DeepSparse's own venv
(bench/peers/deepsparse.sh), since DeepSparse pins older onnx and numpy.

  deepsparse_run.py MODEL.onnx BATCH SEQ THREADS WARMUP ITERS SEED  -> one JSON line
"""
import json
import sys
import time

import numpy as np


def main():
    path, batch, seq, threads, warmup, iters, seed = sys.argv[1:8]
    batch, seq, threads, warmup, iters = map(int, (batch, seq, threads, warmup, iters))
    import deepsparse
    import onnx

    model = onnx.load(path, load_external_data=False)
    vocab = None
    for init in model.graph.initializer:
        if "word_embeddings" in init.name:
            vocab = init.dims[0]
    if vocab is None:
        vocab = 30522
    names = [i.name for i in model.graph.input]
    engine = deepsparse.compile_model(
        path, batch_size=batch, num_cores=threads, input_shapes=[[batch, seq]] * len(names)
    )
    rng = np.random.default_rng(int(seed))
    feeds = {
        "input_ids": rng.integers(0, vocab, size=(batch, seq), dtype=np.int64),
        "attention_mask": np.ones((batch, seq), dtype=np.int64),
        "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
    }
    inputs = [feeds[n] for n in names]
    for _ in range(warmup):
        engine.run(inputs)
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        engine.run(inputs)
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    mid = (len(ms) - 1) / 2
    p50 = (ms[int(mid)] + ms[int(mid + 0.5)]) / 2
    print(json.dumps({
        "p50_ms": p50,
        "p90_ms": ms[min(len(ms) - 1, int(0.9 * (len(ms) - 1) + 0.5))],
        "mean_ms": sum(ms) / len(ms),
        "iters": iters,
        "note": f"deepsparse {deepsparse.__version__}, fp32 ONNX, {threads} cores",
    }))


if __name__ == "__main__":
    main()
