#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build (see fuzz/CMakeLists.txt).
#
#   FUZZ_SECONDS=60 fuzz/run-all.sh BUILD_DIR
#
# FUZZ_TARGETS="fuzz_tables fuzz_nt_file" restricts the run to some targets.
#
# 1. Seeds: BUILD_DIR/fuzz/make_seeds writes fresh seeds into
#    BUILD_DIR/fuzz-seeds/<target>/, to which the committed fuzz/corpus/<target>/*,
#    fuzz/regressions/** and tests/corpus/damaged/* (where present) are added.
# 2. Regression: every target executes each of its seeds once, whole.
# 3. Fuzzing: each target in turn for FUZZ_SECONDS (default 60) seconds, with
#    a persistent scratch corpus in BUILD_DIR/fuzz-corpus/<target>/ and crash
#    files in BUILD_DIR/fuzz-artifacts/<target>/.
#
# Output is one line per target and phase; the logs are in BUILD_DIR/fuzz-logs/.
# Exit status is non-zero when any target crashes, leaks, times out or runs
# out of memory.
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: FUZZ_SECONDS=60 $0 BUILD_DIR" >&2
  exit 2
fi
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "$1" && pwd) || exit 2
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
# shellcheck source=fuzz/lib.sh
source "$SRC/fuzz/lib.sh"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-$FUZZ_ALL_TARGETS}"
fuzz_check_targets "$BUILD" "${TARGETS[@]}" || exit 2
LIMITS=("${FUZZ_LIMITS[@]}")

SEEDS=$BUILD/fuzz-seeds
LOGS=$BUILD/fuzz-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
fuzz_prepare_seeds "$SRC" "$BUILD" "$SEEDS" "$LOGS/make_seeds.log" "${TARGETS[@]}" || exit 1

failed=0

# report_failure TARGET LOG [INPUT]
report_failure() {
  local target=$1 log=$2 input=${3:-}
  echo "fuzz: $target: FAILED (log: $log)"
  tail -n 30 "$log" | cut -c1-200 | sed "s/^/    /"
  local crash
  crash=$(grep -o 'Test unit written to .*' "$log" | tail -n 1 | sed 's/^Test unit written to //')
  if [[ -n "$crash" ]]; then
    echo "fuzz: $target: crash input: $crash"
  elif [[ -n "$input" ]]; then
    echo "fuzz: $target: crash input: $input"
  fi
  failed=1
}

# ---- Regression: each seed once, whole (no -max_len truncation). ----------
regressed=()
for t in "${TARGETS[@]}"; do
  log=$LOGS/$t.regression.log
  n=$(find "$SEEDS/$t" -type f | wc -l)
  if (( n == 0 )); then
    echo "fuzz: $t: no seeds"
    continue
  fi
  # Files given by name run once each; xargs may split long lists.
  if find "$SEEDS/$t" -type f -print0 | sort -z |
      xargs -0 "$BUILD/fuzz/$t" "${LIMITS[@]}" >"$log" 2>&1; then
    echo "fuzz: $t: $n seeds replayed, ok"
  else
    last=$(grep -o '^Running: .*' "$log" | tail -n 1 | sed 's/^Running: //')
    report_failure "$t" "$log" "$last"
    regressed+=("$t")
  fi
done

# ---- Fuzzing, one target at a time. ----------------------------------------
for t in "${TARGETS[@]}"; do
  if [[ " ${regressed[*]:-} " == *" $t "* ]]; then
    echo "fuzz: $t: not fuzzed (its seeds already fail)"
    continue
  fi
  corpus=$BUILD/fuzz-corpus/$t
  artifacts=$BUILD/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  log=$LOGS/$t.log
  read -r -a dict <<<"$(fuzz_dict_args "$SRC" "$t")"
  "$BUILD/fuzz/$t" "${LIMITS[@]}" -max_len=65536 -max_total_time="$SECONDS_PER_TARGET" \
    -print_final_stats=0 -artifact_prefix="$artifacts/" "${dict[@]}" \
    "$corpus" "$SEEDS/$t" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1 | grep -o '[0-9]*')
  if (( rc == 0 )) && [[ -n "$runs" ]]; then
    echo "fuzz: $t: $runs runs, ok"
  else
    report_failure "$t" "$log"
  fi
done

exit $failed
