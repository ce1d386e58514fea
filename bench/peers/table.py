#!/usr/bin/env python3
"""Formats bench/peers/run.sh's JSON lines (sparq-eval --format json, then peers.py) as one
Markdown table: median latency, throughput and each row's ratio to sparq int8."""
import datetime
import json
import platform
import subprocess
import sys


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        flags = fields.get("Flags", "")
        isa = "AVX-512 VNNI" if "avx512_vnni" in flags else ("AVX2" if "avx2" in flags else "SSE")
        return f"{fields.get('Model name', '?').strip()}, {isa}, {fields.get('CPU(s)', '?').strip()} CPUs"
    except OSError:
        return platform.processor()


def main():
    lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
    sparq = [l for l in lines if "dtype" in l]
    peers = [l for l in lines if "runtime" in l]
    if not sparq:
        sys.exit("no sparq-eval results")
    first = sparq[0]
    int8_runs = [l["p50_ms"] for l in sparq if l["dtype"] == "int8"]
    ours = sorted(int8_runs)[len(int8_runs) // 2] if len(int8_runs) != 2 else sum(int8_runs) / 2
    rows = []
    seen = set()
    for l in sparq:
        key = l["dtype"]
        if key in seen:
            continue
        seen.add(key)
        p50 = ours if key == "int8" else l["p50_ms"]
        kernels = ", ".join(sorted(set(l["kernels"].values())))
        if "attention" in l:
            kernels += "; attention " + l["attention"]
        rows.append((f"sparq {key}, {l['pattern']} at {l['sparsity']:.0%}", p50, kernels))
        rows.append((f"sparq {key}, dense (same process)", l["dense_p50_ms"], l["dense_kernel"]))
    for p in peers:
        if "skipped" in p:
            rows.append((p["runtime"], None, "not run: " + p["skipped"][:120]))
        else:
            rows.append((p["runtime"], p["p50_ms"], p.get("note", "")))
    print(f"{first['model']}, batch {first['batch']} x seq {first['seq']}, "
          f"{first['threads']} threads; {cpu_name()}; "
          f"{datetime.date.today().isoformat()}")
    print()
    print("| runtime | p50 ms | sequences/s | sparq int8 is faster by | notes |")
    print("|---|---:|---:|---:|---|")
    for name, p50, note in rows:
        if p50 is None:
            print(f"| {name} | - | - | - | {note} |")
        else:
            print(f"| {name} | {p50:.1f} | {first['batch'] * 1e3 / p50:.1f} | {p50 / ours:.2f}x | {note} |")
    if len(int8_runs) > 1:
        print()
        print("sparq int8 p50 of the runs before and after the peers: "
              + ", ".join(f"{x:.1f} ms" for x in int8_runs))


if __name__ == "__main__":
    main()
