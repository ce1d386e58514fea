#!/usr/bin/env python3
"""Times one Hugging Face BERT folder on the peer runtimes, same batch / sequence / threads.

Runs in the environment bench/peers/venv.sh makes; bench/peers/run.sh drives it and puts sparq's
own numbers beside these. Every runtime gets the same random token ids (all positions real),
warm-up runs first, then the median of --iters timed calls.

Runtimes (each skipped with its reason when it cannot run here):
  pytorch        transformers BertModel, fp32, torch.inference_mode, torch.set_num_threads
  ort-fp32       ONNX Runtime on the ONNX export, fused by onnxruntime.transformers' BERT optimizer
  ort-int8       the same optimized graph through quantize_dynamic (int8 weights per channel,
                 dynamic uint8 activations): ONNX Runtime's recommended CPU int8 path
  ort-int8-static  the raw export statically quantized (QDQ, s8 activations and per-channel
                 weights, calibrated on 4 random inputs) on ONNX Runtime
  deepsparse     Neural Magic DeepSparse on the fp32 export (it finds the zeros itself)
  deepsparse-int8  DeepSparse on the static QDQ int8 model (its own venv: deepsparse.sh)

Prints one JSON object per runtime on stdout: runtime, p50_ms, p90_ms, mean_ms, iters, note.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time


def percentile(values, p):
    values = sorted(values)
    at = p * (len(values) - 1)
    lo = int(at)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (at - lo)


def timed(run, warmup, iters):
    for _ in range(warmup):
        run()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        run()
        ms.append((time.perf_counter() - t0) * 1e3)
    return {
        "p50_ms": percentile(ms, 0.5),
        "p90_ms": percentile(ms, 0.9),
        "mean_ms": statistics.fmean(ms),
        "iters": iters,
    }


def inputs(args, vocab):
    import numpy as np

    rng = np.random.default_rng(args.seed)
    ids = rng.integers(0, vocab, size=(args.batch, args.seq), dtype=np.int64)
    mask = np.ones_like(ids)
    types = np.zeros_like(ids)
    return ids, mask, types


def input_names(folder):
    """The model's inputs: BERT takes token types, DistilBERT does not."""
    import transformers

    model_type = transformers.AutoConfig.from_pretrained(folder).model_type
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if model_type == "bert" else [])


def load_model(folder):
    """BertModel in fp32 without the pooler: sparq's executor returns the last hidden state."""
    import torch
    import transformers

    # BERT has a pooler to leave out; DistilBERT has none (and refuses the argument).
    model_type = transformers.AutoConfig.from_pretrained(folder).model_type
    extra = {"add_pooling_layer": False} if model_type == "bert" else {}
    return transformers.AutoModel.from_pretrained(folder, dtype=torch.float32, **extra).eval()


def run_pytorch(args, ids, mask, types):
    import torch

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    tensors = dict(zip(("input_ids", "attention_mask", "token_type_ids"),
                       (torch.from_numpy(x) for x in (ids, mask, types))))
    kwargs = {n: tensors[n] for n in input_names(args.model)}
    with torch.inference_mode():
        result = timed(lambda: model(**kwargs), args.warmup, args.iters)
    result["note"] = f"torch {torch.__version__}, fp32"
    return result


def export_onnx(args, work):
    """The fp32 export and its BERT-optimized form (fused attention, LayerNorm, GELU)."""
    import torch
    from onnxruntime.transformers import optimizer

    raw = work / "model.onnx"
    fused = work / "model_optimized.onnx"
    if fused.exists():
        return fused
    bert = load_model(args.model)
    config = bert.config
    names = input_names(args.model)

    class Positional(torch.nn.Module):  # the exporter traces positional inputs only
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, *inputs):
            return self.bert(**dict(zip(names, inputs))).last_hidden_state

    model = Positional().eval()
    example = tuple(
        f((1, 8), dtype=torch.int64) for f in (torch.zeros, torch.ones, torch.zeros)
    )[: len(names)]
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(
        model,
        example,
        str(raw),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={n: axes for n in names},
        opset_version=17,
        dynamo=False,
    )
    opt = optimizer.optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,
    )
    opt.save_model_to_file(str(fused))
    return fused


def ort_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_ort(args, ids, mask, types, work, int8):
    import onnxruntime as ort

    path = export_onnx(args, work)
    note = f"onnxruntime {ort.__version__}, fp32, BERT-fused graph"
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = work / "model_int8.onnx"
        if not quantized.exists():
            import onnx

            # The fused graph has contrib ops that shape inference cannot type.
            quantize_dynamic(
                str(path),
                str(quantized),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        path = quantized
        note = f"onnxruntime {ort.__version__}, int8 dynamic quantization (per-channel s8 weights)"
    session = ort_session(path, args.threads)
    names = {i.name for i in session.get_inputs()}
    feed = {
        k: v
        for k, v in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types))
        if k in names
    }
    result = timed(lambda: session.run(None, feed), args.warmup, args.iters)
    result["note"] = note
    return result


def static_int8(args, work):
    """The raw export with its MatMuls statically quantized to s8 in QDQ form."""
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    raw = export_onnx(args, work).with_name("model.onnx")
    qdq = work / "model_qdq.onnx"
    if qdq.exists():
        return qdq
    vocab = json.loads((pathlib.Path(args.model) / "config.json").read_text())["vocab_size"]
    names = input_names(args.model)

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(args.seed + 1)
            shape = (args.batch, args.seq)
            self.items = iter(
                [
                    {
                        k: v
                        for k, v in (
                            ("input_ids", rng.integers(0, vocab, shape, dtype=np.int64)),
                            ("attention_mask", np.ones(shape, np.int64)),
                            ("token_type_ids", np.zeros(shape, np.int64)),
                        )
                        if k in names
                    }
                    for _ in range(4)
                ]
            )

        def get_next(self):
            return next(self.items, None)

    quantize_static(
        str(raw),
        str(qdq),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )
    return qdq


def run_ort_static(args, ids, mask, types, work):
    import onnxruntime as ort

    session = ort_session(static_int8(args, work), args.threads)
    names = {i.name for i in session.get_inputs()}
    feed = {
        k: v
        for k, v in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types))
        if k in names
    }
    result = timed(lambda: session.run(None, feed), args.warmup, args.iters)
    result["note"] = f"onnxruntime {ort.__version__}, static int8 QDQ (s8 activations)"
    return result


def run_deepsparse(args, work, int8=False):
    """DeepSparse lives in its own venv (old pins); it compiles the fp32 or the QDQ export."""
    python = os.environ.get("SPARQ_DEEPSPARSE_PYTHON")
    if not python or not pathlib.Path(python).exists():
        raise RuntimeError("no DeepSparse environment (bench/peers/deepsparse.sh makes one)")
    path = static_int8(args, work) if int8 else export_onnx(args, work).with_name("model.onnx")
    script = pathlib.Path(__file__).with_name("deepsparse_run.py")
    cmd = [python, str(script), str(path), str(args.batch), str(args.seq), str(args.threads),
           str(args.warmup), str(args.iters), str(args.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError((out.stderr or out.stdout).strip().splitlines()[-1])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if int8:
        result["note"] = result["note"].replace("fp32 ONNX", "static int8 QDQ ONNX")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", required=True, help="folder for ONNX exports")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--runtimes",
        default="pytorch,ort-fp32,ort-int8,ort-int8-static,deepsparse,deepsparse-int8",
    )
    args = parser.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    vocab = json.loads((pathlib.Path(args.model) / "config.json").read_text())["vocab_size"]
    ids, mask, types = inputs(args, vocab)
    runners = {
        "pytorch": lambda: run_pytorch(args, ids, mask, types),
        "ort-fp32": lambda: run_ort(args, ids, mask, types, work, int8=False),
        "ort-int8": lambda: run_ort(args, ids, mask, types, work, int8=True),
        "ort-int8-static": lambda: run_ort_static(args, ids, mask, types, work),
        "deepsparse": lambda: run_deepsparse(args, work),
        "deepsparse-int8": lambda: run_deepsparse(args, work, int8=True),
    }
    for name in args.runtimes.split(","):
        if name not in runners:
            sys.exit(f"unknown runtime '{name}'; known: {', '.join(runners)}")
        try:
            result = runners[name]()
        except Exception as e:  # a peer that cannot run here is reported, not fatal
            result = {"skipped": f"{type(e).__name__}: {e}"}
        result["runtime"] = name
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
