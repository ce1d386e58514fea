#!/usr/bin/env python3
"""Formats bench/peers/llama_run.sh's JSON lines (sparq-eval --format json, llamacpp_bench.py and
the greedy-ids check) as one Markdown table: pp and tg tokens/s (median over the rounds' medians)
and each sparq row's ratio to llama.cpp Q8_0 and Q4_0."""
import datetime
import json
import statistics
import sys

from table import cpu_name


def main():
    lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
    rows = {}  # name -> {"pp": [...], "tg": [...], "note": str}
    for l in lines:
        if "check" in l:
            continue
        if "quant" in l:
            name, note = f"llama.cpp {l['quant']}", l["runtime"]
        else:
            pattern, dtype = l["pattern"], l.get("dtype", "int8")
            name = f"sparq {dtype}, dense" if pattern == "dense" else (
                f"sparq {dtype}, {pattern}" if pattern == "2:4" else
                f"sparq {dtype}, {pattern} blocks at {l['sparsity']:.0%}")
            if l.get("input_sparsity", 0) > 0:
                name += f", {l['input_sparsity']:.0%} of inputs zeroed"
            note = ", ".join(sorted({k.split(" / ")[-1] for k in l["kernels"].values()}))
            note = "decode " + note
        r = rows.setdefault(name, {"pp": [], "tg": [], "note": note})
        r["pp"].append(l["pp_tokens_per_s"])
        r["tg"].append(l["tg_tokens_per_s"])
    first = next(l for l in lines if "pattern" in l)
    med = {k: {m: statistics.median(v[m]) for m in ("pp", "tg")} for k, v in rows.items()}
    q8, q4 = med.get("llama.cpp Q8_0"), med.get("llama.cpp Q4_0")
    print(f"{first['model']}, {first['threads']} threads, pp{first['prompt_tokens']} and "
          f"tg{first['gen_tokens']} (tg continues after the prompt); {cpu_name()}; "
          f"{datetime.date.today().isoformat()}; median of {len(rows[next(iter(rows))]['pp'])} "
          f"rounds x {first['iters']} runs")
    print()
    print("| runtime | pp tokens/s | tg tokens/s | pp vs Q8_0 | tg vs Q8_0 | pp vs Q4_0 | tg vs Q4_0 |"
          " notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        m = med[name]
        ratio = lambda ref, key: f"{m[key] / ref[key]:.2f}x" if ref else "-"
        print(f"| {name} | {m['pp']:.1f} | {m['tg']:.2f} | {ratio(q8, 'pp')} | {ratio(q8, 'tg')} | "
              f"{ratio(q4, 'pp')} | {ratio(q4, 'tg')} | {r['note']} |")
    print()
    for name, r in rows.items():
        print(f"- {name}: pp " + ", ".join(f"{x:.1f}" for x in r["pp"]) + "; tg " +
              ", ".join(f"{x:.2f}" for x in r["tg"]))
    for l in lines:
        if "check" in l:
            a, b = l["sparq"].split(","), l["llama.cpp"].split(",")
            same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            print(f"- check ({l['check']}): the first {same} of {len(a)} greedy tokens agree "
                  f"(sparq fp32 {l['sparq']}; llama.cpp {l['llama.cpp']})")


if __name__ == "__main__":
    main()
