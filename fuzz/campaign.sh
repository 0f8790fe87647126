#!/usr/bin/env bash
# A long fuzzing campaign: every libFuzzer target of a fuzz build (ASan +
# UBSan, fuzz/CMakeLists.txt) for N minutes each, one after the other,
# growing a corpus kept outside the repository, and a summary per target.
#
#   fuzz/campaign.sh [--minutes N] [--out DIR] [--targets "T1 T2"] [BUILD_DIR]
#
#   --minutes N   minutes per target (default 10)
#   --out DIR     where the campaign keeps its state (default
#                 ~/.cache/ckpt-fuzz); must be outside the repository:
#                   DIR/corpus/<target>/     the growing corpus, minimised
#                                            (libFuzzer -merge=1) after each run
#                   DIR/crashes/<target>/    crash, leak, timeout and OOM inputs
#                   DIR/logs/<target>.log    libFuzzer's output
#   --targets     only these targets (default: all)
#   BUILD_DIR     the fuzz build (default build-fuzz)
#
# A crash does not end the campaign: the target is started again on the
# same corpus for the rest of its minutes, and every reproducer is listed.
# Per target it prints the executions, libFuzzer's final coverage (cov:
# edges, ft: features), the corpus size and the crashes with their
# reproducer paths; then one line per crash to reproduce it. Exit status is
# non-zero when any target crashed. Run it niced on a shared machine:
#   nice -n 19 fuzz/campaign.sh --minutes 5
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=fuzz/lib.sh
source "$SRC/fuzz/lib.sh"

usage() {
  echo "usage: $0 [--minutes N] [--out DIR] [--targets \"T1 T2\"] [BUILD_DIR]" >&2
  exit 2
}
MINUTES=10
OUT=${HOME:-/root}/.cache/ckpt-fuzz
TARGET_LIST=$FUZZ_ALL_TARGETS
BUILD_ARG=$SRC/build-fuzz
while (($#)); do
  case $1 in
    --minutes) [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || usage; MINUTES=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || usage; OUT=$2; shift 2 ;;
    --targets) [[ $# -ge 2 ]] || usage; TARGET_LIST=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) usage ;;
    *) BUILD_ARG=$1; shift ;;
  esac
done
BUILD=$(cd "$BUILD_ARG" 2>/dev/null && pwd) || { echo "campaign: no build folder $BUILD_ARG" >&2; exit 2; }
read -r -a TARGETS <<<"$TARGET_LIST"
fuzz_check_targets "$BUILD" "${TARGETS[@]}" || exit 2
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
if [[ "$OUT/" == "$SRC/"* ]]; then
  echo "campaign: --out $OUT is inside the repository; the corpus it grows belongs outside" >&2
  exit 2
fi

SEEDS=$OUT/seeds
mkdir -p "$OUT/logs"
fuzz_prepare_seeds "$SRC" "$BUILD" "$SEEDS" "$OUT/logs/make_seeds.log" "${TARGETS[@]}" || exit 1

echo "campaign: ${#TARGETS[@]} targets, $MINUTES min each, state in $OUT"
printf '%-18s %10s %7s %7s %7s %8s  %s\n' target runs cov ft corpus crashes reproducers
crashed=0
all_crashes=()
for t in "${TARGETS[@]}"; do
  corpus=$OUT/corpus/$t
  crashes=$OUT/crashes/$t
  log=$OUT/logs/$t.log
  mkdir -p "$corpus" "$crashes"
  : >"$log"
  read -r -a dict <<<"$(fuzz_dict_args "$SRC" "$t")"
  end=$((SECONDS + MINUTES * 60))
  runs=0
  # Restarted after each crash until the target's minutes are used up.
  while ((SECONDS < end - 5)); do
    left=$((end - SECONDS))
    from=$(($(wc -l <"$log") + 1))
    "$BUILD/fuzz/$t" "${FUZZ_LIMITS[@]}" -max_len=65536 -max_total_time="$left" -print_final_stats=1 \
      -artifact_prefix="$crashes/" "${dict[@]}" "$corpus" "$SEEDS/$t" >>"$log" 2>&1
    rc=$?
    n=$(tail -n +"$from" "$log" | grep -o '^stat::number_of_executed_units: [0-9]*' | tail -n 1 | grep -o '[0-9]*$')
    runs=$((runs + ${n:-0}))
    echo "campaign: run ended with status $rc" >>"$log"
    ((rc == 0)) && break
    # Failed without leaving an input (a broken build, a bad flag): do not spin.
    tail -n +"$from" "$log" | grep -q 'Test unit written to' || break
  done
  # Minimise the corpus: keep only inputs that add coverage.
  if [[ -n "$(ls -A "$corpus")" ]]; then
    rm -rf "$corpus.merged"
    mkdir -p "$corpus.merged"
    if "$BUILD/fuzz/$t" "${FUZZ_LIMITS[@]}" -merge=1 "$corpus.merged" "$corpus" >"$OUT/logs/$t.merge.log" 2>&1; then
      rm -rf "$corpus"
      mv "$corpus.merged" "$corpus"
    else
      rm -rf "$corpus.merged"
    fi
  fi
  last=$(grep -E '#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  size=$(find "$corpus" -type f | wc -l)
  mapfile -t found < <(grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to //')
  ncrash=${#found[@]}
  ((ncrash > 0)) && crashed=1
  all_crashes+=("${found[@]/#/$t }")
  printf '%-18s %10s %7s %7s %7s %8s  %s\n' "$t" "$runs" "${cov:-?}" "${ft:-?}" "$size" "$ncrash" \
    "${found[*]:--}"
done

for c in "${all_crashes[@]}"; do
  echo "campaign: reproduce: $BUILD/fuzz/${c%% *} ${c#* }"
done
exit $crashed
