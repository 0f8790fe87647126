#!/bin/bash
# warm_ab.sh [-r ROUNDS] [-n RUNS] BUILD_A BUILD_B: the lazy warm start
# (`./IMAGE --lazy`) of two builds in alternating rounds, python3 and (where
# java and javac are installed) OpenJDK 17, the programs of warm_start.sh.
#
# Each program is dumped once, with BUILD_B's imgtool, and converted to the
# exec form by each build's imgtool, so only the launcher (restore, the
# restorer, the lazy helper) differs. Each round runs bench/timed_run -r RUNS
# (BUILD_B's) of A's image and of B's, the order swapped every round, and
# keeps each one's median wall and CPU time (every process of the run).
# Prints the medians of the rounds' medians, B/A, in how many rounds B's
# CPU was the lower, and the load average before and after. ENV_A and
# ENV_B (words NAME=VALUE) are passed to the image under `env -i` (the same
# build twice with a knob set on one side: CKPT_RESTORE_FILL=two). Defaults:
# 10 rounds of 10 runs. Run as root from the source tree.
set -euo pipefail
export LC_ALL=C
rounds=10 runs=10
while [[ ${1:-} == -r || ${1:-} == -n ]]; do
  if [[ $1 == -r ]]; then rounds=$2; else runs=$2; fi
  shift 2
done
(($# == 2)) || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd)
for t in "$a/imgtool" "$b/imgtool" "$b/bench/timed_run"; do
  [[ -x $t ]] || { echo "warm_ab: $t missing (build it)" >&2; exit 1; }
done
read -r -a env_a <<<"${ENV_A:-}"
read -r -a env_b <<<"${ENV_B:-}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/warm_ab.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.3f", x / y; else printf "-" }'; }

# dump_ready NAME WORDS...: starts WORDS (a program that prints "ready" and
# then reads its standard input to the end), dumps it into NAME.core with
# B's imgtool and converts that into A's and B's exec forms. The program's
# stdin is a pipe whose only writer is our fd 7: restored, it reads EOF at
# once and exits, as in warm_start.sh. Its stderr is a file of the work
# directory, which stays as it was until the images are run.
dump_ready() {
  local name=$1
  shift
  exec 7> >(exec env -i "$@" >"$tmp/$name.out" 2>"$tmp/$name.err")
  local pid=$!
  for _ in $(seq 600); do grep -q ready "$tmp/$name.out" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$tmp/$name.out" 2>/dev/null || { echo "warm_ab: $name did not say ready within 30 s: $(tail -1 "$tmp/$name.err")" >&2; exit 1; }
  "$b/imgtool" dump --pid "$pid" -o "$tmp/$name.core" --kill
  exec 7>&-
  wait "$pid" 2>/dev/null || true
  "$a/imgtool" convert "$tmp/$name.core" --to exec -o "$tmp/$name.a.elf"
  "$b/imgtool" convert "$tmp/$name.core" --to exec -o "$tmp/$name.b.elf"
}

programs=(python3)
dump_ready python3 /usr/bin/python3 -c "import json, email, http.client, decimal, asyncio, sqlite3, os, sys
print('ready', flush=True)
sys.stdin.read()
os._exit(0)"
if [[ -x /usr/bin/java ]] && command -v javac >/dev/null; then
  javac -d "$tmp" "$here/Warm.java"
  dump_ready jvm /usr/bin/java -XX:-UsePerfData -Xmx64m -XX:+UseSerialGC -cp "$tmp" Warm
  programs+=(jvm)
fi

declare -A W C
# one_set PROGRAM SIDE: one timed_run of SIDE's (a or b) image of PROGRAM.
one_set() {
  local p=$1 side=$2 out
  local -n env_side="env_$side"
  out=$(cd "$tmp" && "$b/bench/timed_run" -r "$runs" -- env -i "${env_side[@]}" "./$p.$side.elf" --lazy \
    2>"$tmp/rlog" </dev/null) || { echo "warm_ab: ./$p.$side.elf --lazy failed: $(cat "$tmp/rlog")" >&2; exit 1; }
  W[$p,$side]+="$(awk '{ print $2 }' <<<"$out") "
  C[$p,$side]+="$(awk '{ print $5 }' <<<"$out") "
}
echo "warm_ab: $(date -u +%H:%M:%SZ) A=$a${ENV_A:+ ($ENV_A)} B=$b${ENV_B:+ ($ENV_B)}"
echo "warm_ab: $rounds rounds of $runs runs, load before $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < rounds; r++)); do
  for p in "${programs[@]}"; do
    if ((r % 2)); then one_set "$p" b; one_set "$p" a; else one_set "$p" a; one_set "$p" b; fi
  done
done
printf '%-8s %12s %12s %8s %12s %12s %8s %12s\n' program "A CPU ms" "B CPU ms" B/A "A wall ms" "B wall ms" B/A "B lower in"
for p in "${programs[@]}"; do
  ca=$(median <<<"${C[$p,a]}") cb=$(median <<<"${C[$p,b]}")
  wa=$(median <<<"${W[$p,a]}") wb=$(median <<<"${W[$p,b]}")
  lower=$(paste <(tr ' ' '\n' <<<"${C[$p,a]}" | grep .) <(tr ' ' '\n' <<<"${C[$p,b]}" | grep .) | awk '$2 < $1 { n++ } END { print n + 0 }')
  printf '%-8s %12s %12s %8s %12s %12s %8s %12s\n' "$p" "$ca" "$cb" "$(ratio "$cb" "$ca")" "$wa" "$wb" \
    "$(ratio "$wb" "$wa")" "$lower of $rounds"
done
echo "(medians of the rounds' medians; CPU of every process of a run by bench/timed_run)"
echo "warm_ab: $(date -u +%H:%M:%SZ) load after $(cut -d' ' -f1-3 /proc/loadavg)"
