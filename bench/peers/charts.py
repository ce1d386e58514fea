#!/usr/bin/env python3
"""PNG charts (gnuplot) of the peers' JSON lines:

  charts.py kernels KERNEL_PEERS.jsonl OUT_DIR   speedup over oneDNN dense vs sparsity, one chart
                                                 per shape and token count, a line per runtime
  charts.py throughput THROUGHPUT.jsonl OUT_DIR  sequences/s vs p90 latency, a series per runtime

Writes the data and the gnuplot script beside the PNGs; without gnuplot (Debian: gnuplot-nox) it
says so and leaves the script.
"""
import collections
import json
import pathlib
import shutil
import subprocess
import sys


def lines(path):
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]


def draw(out_dir, script):
    path = out_dir / "charts.gp"
    path.write_text(script)
    if shutil.which("gnuplot") is None:
        print(f"gnuplot not found: charts not drawn (script: {path})", file=sys.stderr)
        return
    subprocess.run(["gnuplot", path.name], cwd=out_dir, check=True)
    for png in sorted(out_dir.glob("*.png")):
        print(png)


# (label, time field, the dense time field it is compared with)
KERNEL_SERIES = [
    ("sparq fp32", "sparq_f32_us", "onednn_f32_us"),
    ("sparq int8 (vs oneDNN int8)", "sparq_int8_us", "onednn_int8_us"),
    ("oneMKL CSR fp32", "mkl_csr_f32_us", "onednn_f32_us"),
    ("oneMKL BSR 4x4 fp32", "mkl_bsr4_f32_us", "onednn_f32_us"),
    ("LIBXSMM fsspmdm fp32", "libxsmm_f32_us", "onednn_f32_us"),
]


def kernels(path, out_dir):
    cases = collections.defaultdict(list)
    for r in lines(path):
        cases[(r["out"], r["in"], r["tokens"], r["threads"])].append(r)
    script = ("set terminal pngcairo size 760,500\nset xlabel 'sparsity (4x1 blocks)'\n"
              "set ylabel 'speedup over oneDNN dense (x)'\nset logscale y 2\nset grid\n"
              "set key outside right\nset xrange [0.65:0.95]\n")
    for (out, inn, tokens, threads), rows in sorted(cases.items()):
        rows.sort(key=lambda r: r["sparsity"])
        name = f"kernels_{out}x{inn}_t{tokens}"
        data = out_dir / f"{name}.dat"
        with open(data, "w") as f:
            for r in rows:
                vals = [r["sparsity"]]
                for _, t, d in KERNEL_SERIES:
                    vals.append(r[d] / r[t] if r.get(t) else float("nan"))
                f.write(" ".join(f"{v:.6g}" for v in vals) + "\n")
        script += (f"set output '{name}.png'\nset title '{out} x {inn}, {tokens} tokens, "
                   f"{threads} thread(s)'\nplot ")
        measured = [i for i, (_, t, _) in enumerate(KERNEL_SERIES) if any(r.get(t) for r in rows)]
        script += ", ".join(f"'{data.name}' using 1:{i + 2} with linespoints title "
                            f"'{KERNEL_SERIES[i][0]}'" for i in measured)
        script += ", 1 with lines dashtype 2 lc 'gray' title 'dense'\n"
    draw(out_dir, script)


def throughput(path, out_dir):
    series = collections.defaultdict(list)
    for r in lines(path):
        if "throughput" not in r:
            continue
        name = r.get("runtime") or f"sparq int8 ({r['model']})"
        series[name].append(r)
    script = ("set terminal pngcairo size 760,500\nset output 'throughput.png'\n"
              "set xlabel 'p90 latency per request (ms)'\nset ylabel 'sequences / s'\n"
              "set logscale x\nset grid\nset key outside right\n"
              "set title 'N instances x K threads, N x K <= cores'\n"
              "plot ")
    parts = []
    for i, (name, rows) in enumerate(series.items()):
        data = out_dir / f"throughput_{i}.dat"
        with open(data, "w") as f:
            for r in sorted(rows, key=lambda r: r["p90_ms"]):
                f.write(f"{r['p90_ms']:.6g} {r['throughput']:.6g}\n")
        parts.append(f"'{data.name}' using 1:2 with points pointsize 1.5 title '{name}'")
    script += ", ".join(parts) + "\n"
    draw(out_dir, script)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("kernels", "throughput"):
        sys.exit(__doc__)
    out_dir = pathlib.Path(sys.argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    (kernels if sys.argv[1] == "kernels" else throughput)(sys.argv[2], out_dir)


if __name__ == "__main__":
    main()
