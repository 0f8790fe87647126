#!/usr/bin/env bash
# Warm start from a self-restoring image (imgtool dump --exec), against a
# cold start of the same state; `imgtool convert` and lazy restore (until
# the process runs) of a large image. Run as root from the source tree; see
# bench/README.md. Every figure is timed by bench/timed_run: wall time and
# the CPU time of every process of a run, medians of RUNS (default 10).
#
#   bench/warm_start.sh [-r RUNS] [--convert-mib N] [BUILD_DIR]
#
# The measured program is Debian's python3 after importing json, email,
# http.client, decimal, asyncio and sqlite3. It then blocks reading its
# standard input, a pipe whose writer only the bench holds. Restored, that
# pipe has no writer left, so the read returns end-of-file at once and the
# program leaves with os._exit(0): the time of `./warm.elf` until it exits is
# the time to bring the warm state back (plus one exit).
set -euo pipefail

RUNS=10
CONVERT_MIB=1024
while [[ $# -gt 0 ]]; do
  case "$1" in
    -r) RUNS=$2; shift 2 ;;
    --convert-mib) CONVERT_MIB=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
BUILD=${1:-build}
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
IMGTOOL=$(realpath "$BUILD/imgtool")
MEMHOG=$(realpath "$BUILD/bench/memhog")
PYTHON=/usr/bin/python3
IMPORTS="json, email, http.client, decimal, asyncio, sqlite3"
[[ -x $IMGTOOL && -x $MEMHOG ]] || { echo "warm_start: build imgtool and memhog first (ninja -C $BUILD)" >&2; exit 1; }
[[ -x $PYTHON ]] || { echo "warm_start: $PYTHON is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-warm.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

now_ns() { date +%s%N; }
# Runs "$@" RUNS times under bench/timed_run (no shell fork in the timed
# span; every process of a run reaped and its CPU counted); sets WALL_MS
# and CPU_MS to the medians.
TIMED_RUN=$(realpath "$BUILD/bench/timed_run")
[[ -x $TIMED_RUN ]] || { echo "warm_start: build bench/timed_run first (ninja -C $BUILD timed_run)" >&2; exit 1; }
timed() {
  local out
  out=$("$TIMED_RUN" -r "$RUNS" "$@" 2>"$WORK/timed.err" </dev/null) || { echo "warm_start: $* failed: $(tail -1 "$WORK/timed.err")" >&2; exit 1; }
  WALL_MS=$(awk '{print $2}' <<<"$out")
  CPU_MS=$(awk '{print $5}' <<<"$out")
}
ratio() { awk -v c="$1" -v w="$2" 'BEGIN {printf "%.1fx", c/w}'; }
# own_exit WORDS...: the program's own last step, with no restore at all.
# RUNS times: start WORDS (a program that prints "ready", then reads its
# standard input to the end and exits), wait for "ready", close its stdin
# and time until it has exited (python3's blocking waitpid; nothing forks in
# the timed span). Sets EXIT_MS to the median. A warm start's run ends with
# this same step, so with the launcher's own start (`env -i ./warm.elf
# --help`) it is a floor no restore can go under: cold / floor is the best
# ratio any warm start could show here.
own_exit() {
  EXIT_MS=$("$PYTHON" - "$RUNS" "$@" <<'PY'
import os, subprocess, sys, time
runs, words = int(sys.argv[1]), sys.argv[2:]
ms = []
for _ in range(runs):
    p = subprocess.Popen(words, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if b"ready" not in p.stdout.readline():
        sys.exit("own_exit: %s did not say ready" % words[0])
    time.sleep(0.1)  # settled into its read
    t0 = time.monotonic()
    p.stdin.close()
    p.wait()
    ms.append((time.monotonic() - t0) * 1000)
ms.sort()
n = len(ms)
print("%.2f" % (ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2))
PY
  ) || { echo "warm_start: measuring the exit of $1 failed" >&2; exit 1; }
}

echo "== warm start: $PYTHON importing $IMPORTS =="
timed -- env -i "$PYTHON" -c "import $IMPORTS"
cold_ms=$WALL_MS cold_cpu=$CPU_MS

# The warm process: its stdin is a pipe whose only writer is our fd 7.
exec 7> >(exec env -i "$PYTHON" -c "import $IMPORTS, os, sys
print('ready', flush=True)
sys.stdin.read()
os._exit(0)" >"$WORK/py.out")
PY=$!
for _ in $(seq 200); do grep -q ready "$WORK/py.out" 2>/dev/null && break; sleep 0.05; done
"$IMGTOOL" dump --pid "$PY" -o "$WORK/warm.elf" --exec --kill
exec 7>&-
wait "$PY" 2>/dev/null || true
image_kib=$(du -k "$WORK/warm.elf" | cut -f1)

cd "$WORK"
timed -- env -i ./warm.elf
eager_ms=$WALL_MS eager_cpu=$CPU_MS
timed -- env -i ./warm.elf --lazy
lazy_ms=$WALL_MS lazy_cpu=$CPU_MS
# The same image in the core form through imgtool: what the launcher costs.
"$IMGTOOL" convert warm.elf --to core -o warm.core
timed -- "$IMGTOOL" restore --lazy warm.core
tool_lazy_ms=$WALL_MS tool_lazy_cpu=$CPU_MS
# The floor: the launcher's own start and python3's own exit.
timed -- env -i ./warm.elf --help
start_ms=$WALL_MS
cd - >/dev/null
own_exit env -i "$PYTHON" -c "import $IMPORTS, os, sys
print('ready', flush=True)
sys.stdin.read()
os._exit(0)"
py_exit_ms=$EXIT_MS

# The JVM: OpenJDK 17 running a small class after a warm-up loop (bench/Warm.java),
# which blocks on standard input the same way and then halts.
JAVA=/usr/bin/java
JAVA_OPTS=(-XX:-UsePerfData -Xmx64m -XX:+UseSerialGC)
java_cold_ms="" java_eager_ms="" java_lazy_ms=""
if [[ -x $JAVA ]] && command -v javac >/dev/null; then
  echo "== warm start: $JAVA after a warm-up loop =="
  javac -d "$WORK" "$BENCH_DIR/Warm.java"
  timed -- env -i "$JAVA" "${JAVA_OPTS[@]}" -cp "$WORK" Warm
  java_cold_ms=$WALL_MS java_cold_cpu=$CPU_MS
  exec 7> >(exec env -i "$JAVA" "${JAVA_OPTS[@]}" -cp "$WORK" Warm >"$WORK/java.out")
  JPID=$!
  for _ in $(seq 600); do grep -q ready "$WORK/java.out" 2>/dev/null && break; sleep 0.05; done
  "$IMGTOOL" dump --pid "$JPID" -o "$WORK/jwarm.elf" --exec --kill
  exec 7>&-
  wait "$JPID" 2>/dev/null || true
  cd "$WORK"
  timed -- env -i ./jwarm.elf
  java_eager_ms=$WALL_MS java_eager_cpu=$CPU_MS
  timed -- env -i ./jwarm.elf --lazy
  java_lazy_ms=$WALL_MS java_lazy_cpu=$CPU_MS
  cd - >/dev/null
  java_kib=$(du -k "$WORK/jwarm.elf" | cut -f1)
  own_exit env -i "$JAVA" "${JAVA_OPTS[@]}" -cp "$WORK" Warm
  java_exit_ms=$EXIT_MS
fi

echo "== convert of a ${CONVERT_MIB} MiB image =="
"$MEMHOG" "$CONVERT_MIB" >"$WORK/memhog.out" &
HOG=$!
for _ in $(seq 600); do grep -q ready "$WORK/memhog.out" 2>/dev/null && break; sleep 0.05; done
"$IMGTOOL" dump --pid "$HOG" -o "$WORK/big.core" --kill
{ wait "$HOG"; } 2>/dev/null || true
sync "$WORK/big.core"
one_way() { "$IMGTOOL" convert "$WORK/big.core" --to exec; }
back() { "$IMGTOOL" convert "$WORK/big.core" --to core; }
t0=$(now_ns); one_way; t1=$(now_ns); back; t2=$(now_ns)
conv_exec_ms=$(awk -v a=$t0 -v b=$t1 'BEGIN {printf "%.1f", (b-a)/1e6}')
conv_core_ms=$(awk -v a=$t1 -v b=$t2 'BEGIN {printf "%.1f", (b-a)/1e6}')
big_mib=$(( $(stat -c %s "$WORK/big.core") >> 20 ))

# Lazy restore of the same image until the process runs (issue 12: <= 10 ms
# at any size): until `--pidfile` is written, which restore does once the
# process is handed over, in the foreground and with --detach.
timed -p "$WORK/restored.pid" -- "$IMGTOOL" restore --lazy --pidfile "$WORK/restored.pid" "$WORK/big.core"
big_lazy_ms=$WALL_MS big_lazy_cpu=$CPU_MS
timed -p "$WORK/restored.pid" -- "$IMGTOOL" restore --lazy --detach --pidfile "$WORK/restored.pid" "$WORK/big.core"
big_detach_ms=$WALL_MS big_detach_cpu=$CPU_MS

row() { printf '%-44s %10s %10s %10s %10s\n' "$@"; }
echo
row "start of the same python3 state" "wall ms" "vs cold" "CPU ms" "vs cold"
row "cold: python3 -c 'import ...'" "$cold_ms" "1.0x" "$cold_cpu" "1.0x"
row "./warm.elf (eager; image ${image_kib} KiB)" "$eager_ms" "$(ratio "$cold_ms" "$eager_ms")" \
  "$eager_cpu" "$(ratio "$cold_cpu" "$eager_cpu")"
row "./warm.elf --lazy" "$lazy_ms" "$(ratio "$cold_ms" "$lazy_ms")" "$lazy_cpu" "$(ratio "$cold_cpu" "$lazy_cpu")"
row "imgtool restore --lazy warm.core" "$tool_lazy_ms" "$(ratio "$cold_ms" "$tool_lazy_ms")" \
  "$tool_lazy_cpu" "$(ratio "$cold_cpu" "$tool_lazy_cpu")"
py_floor_ms=$(awk -v a="$start_ms" -v b="$py_exit_ms" 'BEGIN {printf "%.2f", a+b}')
row "floor: launcher start $start_ms + exit $py_exit_ms" "$py_floor_ms" "$(ratio "$cold_ms" "$py_floor_ms")" "" ""
if [[ -n $java_cold_ms ]]; then
  row "cold: java Warm (warm-up loop)" "$java_cold_ms" "1.0x" "$java_cold_cpu" "1.0x"
  row "./jwarm.elf (eager; image ${java_kib} KiB)" "$java_eager_ms" "$(ratio "$java_cold_ms" "$java_eager_ms")" \
    "$java_eager_cpu" "$(ratio "$java_cold_cpu" "$java_eager_cpu")"
  row "./jwarm.elf --lazy" "$java_lazy_ms" "$(ratio "$java_cold_ms" "$java_lazy_ms")" \
    "$java_lazy_cpu" "$(ratio "$java_cold_cpu" "$java_lazy_cpu")"
  java_floor_ms=$(awk -v a="$start_ms" -v b="$java_exit_ms" 'BEGIN {printf "%.2f", a+b}')
  row "floor: launcher start $start_ms + exit $java_exit_ms" "$java_floor_ms" "$(ratio "$java_cold_ms" "$java_floor_ms")" "" ""
fi
echo
row "lazy restore of memhog ${CONVERT_MIB} MiB, until it runs" "wall ms" "" "CPU ms" ""
row "  imgtool restore --lazy" "$big_lazy_ms" "" "$big_lazy_cpu" ""
row "  imgtool restore --lazy --detach" "$big_detach_ms" "" "$big_detach_cpu" ""
echo
printf '%-44s %10s\n' "imgtool convert, ${big_mib} MiB image" "ms"
printf '%-44s %10s\n' "  --to exec (in place)" "$conv_exec_ms"
printf '%-44s %10s\n' "  --to core (in place)" "$conv_core_ms"
echo "(medians of $RUNS runs by bench/timed_run: wall from fork to exit, or to the pid file;"
echo " CPU of every process of a run; convert: one run each way, including imgtool's start;"
echo " floor: \`env -i ./warm.elf --help\` plus the program's own exit after EOF, timed in the"
echo " original with no restore: no warm start can be faster than that)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
