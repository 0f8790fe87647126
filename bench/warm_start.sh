#!/usr/bin/env bash
# Warm start from a self-restoring image (imgtool dump --exec), against a
# cold start of the same state, and the cost of `imgtool convert` on a large
# image. Run as root from the source tree; see bench/README.md.
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

RUNS=5
CONVERT_MIB=1024
while [[ $# -gt 0 ]]; do
  case "$1" in
    -r) RUNS=$2; shift 2 ;;
    --convert-mib) CONVERT_MIB=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
BUILD=${1:-build}
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
# Runs "$@" RUNS times; prints the median wall time in ms.
median_ms() {
  local times=() t0 t1 i
  for ((i = 0; i < RUNS; i++)); do
    t0=$(now_ns)
    "$@" >/dev/null
    t1=$(now_ns)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

echo "== warm start: $PYTHON importing $IMPORTS =="
cold() { env -i "$PYTHON" -c "import $IMPORTS"; }
cold_ms=$(median_ms cold)

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
eager() { env -i ./warm.elf; }
lazy() { env -i ./warm.elf --lazy; }
eager_ms=$(median_ms eager)
lazy_ms=$(median_ms lazy)
# The same image in the core form through imgtool: what the launcher costs.
"$IMGTOOL" convert warm.elf --to core -o warm.core
tool_lazy() { "$IMGTOOL" restore --lazy warm.core; }
tool_lazy_ms=$(median_ms tool_lazy)
cd - >/dev/null

# The JVM: OpenJDK 17 running a small class after a warm-up loop (Warm.java
# below), which blocks on standard input the same way and then halts.
JAVA=/usr/bin/java
JAVA_OPTS=(-XX:-UsePerfData -Xmx64m -XX:+UseSerialGC)
java_cold_ms="" java_eager_ms="" java_lazy_ms=""
if [[ -x $JAVA ]] && command -v javac >/dev/null; then
  echo "== warm start: $JAVA after a warm-up loop =="
  cat >"$WORK/Warm.java" <<'JAVA'
public class Warm {
  public static void main(String[] args) throws Exception {
    long sum = 0;
    for (int round = 0; round < 200; round++) {
      java.util.HashMap<Integer, String> m = new java.util.HashMap<>();
      for (int i = 0; i < 10000; i++) m.put(i, Integer.toString(i));
      sum += m.size();
    }
    System.out.println("ready " + sum);
    System.out.flush();
    while (System.in.read() >= 0) {}
    Runtime.getRuntime().halt(0);
  }
}
JAVA
  javac -d "$WORK" "$WORK/Warm.java"
  java_cold() { env -i "$JAVA" "${JAVA_OPTS[@]}" -cp "$WORK" Warm </dev/null; }
  java_cold_ms=$(median_ms java_cold)
  exec 7> >(exec env -i "$JAVA" "${JAVA_OPTS[@]}" -cp "$WORK" Warm >"$WORK/java.out")
  JPID=$!
  for _ in $(seq 600); do grep -q ready "$WORK/java.out" 2>/dev/null && break; sleep 0.05; done
  "$IMGTOOL" dump --pid "$JPID" -o "$WORK/jwarm.elf" --exec --kill
  exec 7>&-
  wait "$JPID" 2>/dev/null || true
  cd "$WORK"
  java_eager() { env -i ./jwarm.elf; }
  java_lazy() { env -i ./jwarm.elf --lazy; }
  java_eager_ms=$(median_ms java_eager)
  java_lazy_ms=$(median_ms java_lazy)
  cd - >/dev/null
  java_kib=$(du -k "$WORK/jwarm.elf" | cut -f1)
fi

echo "== convert of a ${CONVERT_MIB} MiB image =="
"$MEMHOG" "$CONVERT_MIB" >"$WORK/memhog.out" &
HOG=$!
for _ in $(seq 600); do grep -q ready "$WORK/memhog.out" 2>/dev/null && break; sleep 0.05; done
"$IMGTOOL" dump --pid "$HOG" -o "$WORK/big.core" --kill
wait "$HOG" 2>/dev/null || true
sync "$WORK/big.core"
one_way() { "$IMGTOOL" convert "$WORK/big.core" --to exec; }
back() { "$IMGTOOL" convert "$WORK/big.core" --to core; }
t0=$(now_ns); one_way; t1=$(now_ns); back; t2=$(now_ns)
conv_exec_ms=$(awk -v a=$t0 -v b=$t1 'BEGIN {printf "%.1f", (b-a)/1e6}')
conv_core_ms=$(awk -v a=$t1 -v b=$t2 'BEGIN {printf "%.1f", (b-a)/1e6}')
big_mib=$(( $(stat -c %s "$WORK/big.core") >> 20 ))

echo
printf '%-44s %10s %10s\n' "start of the same python3 state" "ms" "vs cold"
printf '%-44s %10s %10s\n' "cold: python3 -c 'import ...'" "$cold_ms" "1.0x"
printf '%-44s %10s %10s\n' "./warm.elf (eager; image ${image_kib} KiB)" "$eager_ms" \
  "$(awk -v c=$cold_ms -v w=$eager_ms 'BEGIN {printf "%.1fx", c/w}')"
printf '%-44s %10s %10s\n' "./warm.elf --lazy" "$lazy_ms" \
  "$(awk -v c=$cold_ms -v w=$lazy_ms 'BEGIN {printf "%.1fx", c/w}')"
printf '%-44s %10s %10s\n' "imgtool restore --lazy warm.core" "$tool_lazy_ms" \
  "$(awk -v c=$cold_ms -v w=$tool_lazy_ms 'BEGIN {printf "%.1fx", c/w}')"
if [[ -n $java_cold_ms ]]; then
  printf '%-44s %10s %10s\n' "cold: java Warm (warm-up loop)" "$java_cold_ms" "1.0x"
  printf '%-44s %10s %10s\n' "./jwarm.elf (eager; image ${java_kib} KiB)" "$java_eager_ms" \
    "$(awk -v c=$java_cold_ms -v w=$java_eager_ms 'BEGIN {printf "%.1fx", c/w}')"
  printf '%-44s %10s %10s\n' "./jwarm.elf --lazy" "$java_lazy_ms" \
    "$(awk -v c=$java_cold_ms -v w=$java_lazy_ms 'BEGIN {printf "%.1fx", c/w}')"
fi
echo
printf '%-44s %10s\n' "imgtool convert, ${big_mib} MiB image" "ms"
printf '%-44s %10s\n' "  --to exec (in place)" "$conv_exec_ms"
printf '%-44s %10s\n' "  --to core (in place)" "$conv_core_ms"
echo "(medians of $RUNS runs; convert: one run each way, including imgtool's start)"
