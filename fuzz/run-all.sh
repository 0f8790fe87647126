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
ALL_TARGETS="fuzz_image_reader fuzz_tables fuzz_nt_file fuzz_llvm_diff fuzz_imgtool_info"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-$ALL_TARGETS}"
for t in "${TARGETS[@]}"; do
  if [[ " $ALL_TARGETS " != *" $t "* ]]; then
    echo "fuzz: unknown target $t (known: $ALL_TARGETS)" >&2
    exit 2
  fi
done
# Inputs that are whole images also go to these targets.
IMAGE_TARGETS=" fuzz_image_reader fuzz_llvm_diff fuzz_imgtool_info "
LIMITS=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024)

for t in "${TARGETS[@]}" make_seeds; do
  if [[ ! -x "$BUILD/fuzz/$t" ]]; then
    echo "fuzz: $BUILD/fuzz/$t is missing; build with -DCKPT_BUILD_FUZZ=ON first" >&2
    exit 2
  fi
done

SEEDS=$BUILD/fuzz-seeds
LOGS=$BUILD/fuzz-logs
rm -rf "$SEEDS" "$LOGS"
mkdir -p "$SEEDS" "$LOGS"
if ! "$BUILD/fuzz/make_seeds" "$SEEDS" >"$LOGS/make_seeds.log" 2>&1; then
  echo "fuzz: make_seeds failed:" >&2
  tail -n 20 "$LOGS/make_seeds.log" >&2
  exit 1
fi

# add_inputs TARGET PREFIX FILE...: copies regular files (not *.md) into the
# seed folder of TARGET under a prefixed name (sources may share file names).
add_inputs() {
  local target=$1 prefix=$2
  shift 2
  local f
  for f in "$@"; do
    [[ -f "$f" && "$f" != *.md ]] || continue
    cp "$f" "$SEEDS/$target/$prefix-$(basename "$f")"
  done
}

for t in "${TARGETS[@]}"; do
  mkdir -p "$SEEDS/$t"
  if [[ -d "$SRC/fuzz/corpus/$t" ]]; then
    add_inputs "$t" corpus "$SRC/fuzz/corpus/$t"/*
  fi
  # Regressions: fuzz/regressions/<target>/* for that target, anything
  # directly in fuzz/regressions/ for all (every target takes any input).
  if [[ -d "$SRC/fuzz/regressions/$t" ]]; then
    add_inputs "$t" regression "$SRC/fuzz/regressions/$t"/*
  fi
  if [[ -d "$SRC/fuzz/regressions" ]]; then
    add_inputs "$t" regression "$SRC/fuzz/regressions"/*
  fi
  if [[ "$IMAGE_TARGETS" == *" $t "* && -d "$SRC/tests/corpus/damaged" ]]; then
    add_inputs "$t" damaged "$SRC/tests/corpus/damaged"/*
  fi
done

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
  dict=()
  if [[ "$IMAGE_TARGETS" == *" $t "* && -f "$SRC/fuzz/image.dict" ]]; then
    dict=(-dict="$SRC/fuzz/image.dict")
  fi
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
