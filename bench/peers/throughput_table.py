#!/usr/bin/env python3
"""Formats bench/peers/throughput.sh's JSON lines (sparq-eval --latency-bound and throughput.py)
as Markdown: per runtime, the highest throughput whose p90 latency stays within the bound, then
every point explored."""
import json
import sys


def main():
    path, bound = sys.argv[1], float(sys.argv[2])
    rows = []
    for line in open(path):
        if not line.strip().startswith("{"):
            continue
        r = json.loads(line)
        if "runtime" not in r:  # sparq-eval's lines
            r["runtime"] = "sparq int8, " + ("one model object per instance" if r["model"] == "separate" else "one shared model object")
        rows.append(r)
    print(f"Highest throughput with p90 latency <= {bound:g} ms:")
    print()
    print("| runtime | sequences/s | instances x threads | p50 ms | p90 ms |")
    print("|---|---:|---|---:|---:|")
    best = {}
    for r in rows:
        if r["p90_ms"] <= bound and (r["runtime"] not in best
                                     or r["throughput"] > best[r["runtime"]]["throughput"]):
            best[r["runtime"]] = r
    for name in dict.fromkeys(r["runtime"] for r in rows):
        b = best.get(name)
        if b is None:
            print(f"| {name} | - | no point within the bound | - | - |")
        else:
            print(f"| {name} | {b['throughput']:.1f} | {b['instances']} x "
                  f"{b['threads_per_instance']} | {b['p50_ms']:.2f} | {b['p90_ms']:.2f} |")
    print()
    print("Every point:")
    print()
    print("| runtime | instances x threads | sequences/s | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['runtime']} | {r['instances']} x {r['threads_per_instance']} | "
              f"{r['throughput']:.1f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
