#!/usr/bin/env bash
# The kernel table of docs/benchmarks.md: every kernel family sparq-bench measures against oneDNN
# of the same dtype (int8 against u8 activations, bf16 against oneDNN's bf16 GEMM where the CPU
# has one), one thread unless a row says otherwise, medians of interleaved pairs. Prints a
# markdown table with the CPU model and flags; the raw JSON lines go to $SPARQ_TABLE_JSON (default
# kernel_table.jsonl in the current folder). --rounds N runs the whole list N times, case after
# case in each round, and prints per row the medians over the rounds and the range of the
# speedups: on a shared or virtual machine one run of a row can read 20-30 % low.
#   bench/kernel_table.sh [--quick] [--rounds N] [build folder]
set -euo pipefail
quick=0
rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) break ;;
  esac
done
build="${1:-build}"
bench="$build/bench/sparq-bench"
[ -x "$bench" ] || { echo "kernel_table: $bench not found (build first: scripts/build.sh)" >&2; exit 1; }
out="${SPARQ_TABLE_JSON:-kernel_table.jsonl}"
: > "$out"
seconds=$([ "$quick" = 1 ] && echo 0.3 || echo 1)
run() {  # label, then sparq-bench spmm arguments
  local label="$1"; shift
  "$bench" spmm --format json --min-seconds "$seconds" "$@" 2>/dev/null |
    python3 -c 'import json,sys
label=sys.argv[1]
for line in sys.stdin:
    line=line.strip()
    if not line: continue
    d=json.loads(line)
    for r in (d if isinstance(d,list) else [d]):
        r["label"]=label; print(json.dumps(r))' "$label" >> "$out"
}
p128=(--tokens 128 --threads 1)
for round in $(seq "$rounds"); do
  for dtype in int8 f32 bf16; do
    run "$dtype 4x1 prefill" --dtype $dtype --pattern 4x1 --shapes 3072x768,768x3072 --sparsity 0.7,0.9 "${p128[@]}"
    run "$dtype 2:4 prefill" --dtype $dtype --pattern 2:4 --shapes 4096x4096,3072x768 --sparsity 0.5 "${p128[@]}"
    run "$dtype 16x1 decode, cold" --dtype $dtype --pattern 16x1 --shapes 4096x4096,11008x4096 \
      --sparsity 0.8,0 --tokens 1 --threads 1 --cold-weights
  done
  run "int8 4x1 prefill, tails" --dtype int8 --pattern 4x1 --shapes 3070x770,766x3070 --sparsity 0.9 --tokens 100 --threads 1
  run "int8 4x1 prefill, 2 threads" --dtype int8 --pattern 4x1 --shapes 3072x768 --sparsity 0.9 --tokens 128 --threads 2
  run "int8 2:4 decode, cold" --dtype int8 --pattern 2:4 --shapes 4096x4096,11008x4096 --sparsity 0.5 --tokens 1 --threads 1 --cold-weights
  run "int8 dense layer" --dtype int8 --pattern dense --shapes 3072x768 --sparsity 0 "${p128[@]}"
done
python3 - "$out" <<'PY'
import json, statistics, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
flags = subprocess.run("lscpu | grep -o -E 'avx512[a-z_0-9]*|amx[a-z_0-9]*|avx_vnni' | sort -u | tr '\\n' ' '", shell=True, capture_output=True, text=True).stdout.strip()
groups = {}
for r in rows:  # one group per row of the table, in the order first run
    key = (r["label"], r["out"], r["in"], r["tokens"], r["sparsity"], r["threads"])
    groups.setdefault(key, []).append(r)
rounds = max(len(g) for g in groups.values())
print(f"CPU: {cpu}; flags: {flags}" + (f"; medians of {rounds} rounds" if rounds > 1 else "") + "\n")
print("| case | out x in | tokens | sparsity | threads | sparq us | dense us | speedup | range | GB/s sparq / dense | kernel | dense kernel |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
med = lambda g, k: statistics.median(x[k] for x in g)
for key, g in groups.items():
    r = g[0]
    speedups = [x["speedup"] for x in g]
    spread = f"{min(speedups):.2f}-{max(speedups):.2f}x" if len(g) > 1 else ""
    gbps = f"{med(g, 'sparse_weight_gbps'):.1f} / {med(g, 'dense_weight_gbps'):.1f}" if r.get("cold_weights") else ""
    print(f"| {r['label']} | {r['out']} x {r['in']} | {r['tokens']} | {r['sparsity']:.2f} | {r['threads']} | "
          f"{med(g, 'sparse_us'):.1f} | {med(g, 'dense_us'):.1f} | {statistics.median(speedups):.2f}x | {spread} | {gbps} | "
          f"`{r['kernel']}` | `{r['dense_kernel']}` |")
PY
