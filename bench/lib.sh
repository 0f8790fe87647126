# shellcheck shell=bash
# Shared by bench/dump_bench.sh and bench/speed_bench.sh (sourced, not run):
# their command line, the build, the temp folder and its cleanup, timing and
# arithmetic helpers, and the memhog target's start and stop. The sourcing
# script sets `bench_name` (for messages) first, and `set -euo pipefail`.

: "${bench_name:?set bench_name before sourcing bench/lib.sh}"

die() { echo "$bench_name: $*" >&2; exit 1; }
# The script's header comment, from line 2 up to `set -euo pipefail`.
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# bench_parse_args "$@": [--quick] [-r R] [BUILD_DIR] [SIZES...] into
# `build` (the folder as given, or ""), `sizes` (MiB), `repeat` (or "")
# and `quick` (0 or 1). Sizes are MiB, or with a suffix: 256M, 1G.
bench_parse_args() {
  build="" sizes=() repeat="" quick=0
  while (($#)); do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --quick) quick=1 ;;
      -r|--repeat) (($# >= 2)) || die "$1 needs a number"; repeat=$2; shift ;;
      -r*) repeat=${1#-r} ;;
      -*) die "unknown option $1 (see --help)" ;;
      *)
        if [[ -z $build && ${#sizes[@]} -eq 0 && -d $1 ]]; then
          build=$1
        elif [[ $1 =~ ^([0-9]+)([MmGg]([Ii][Bb])?)?$ ]]; then
          local n=${BASH_REMATCH[1]}
          [[ ${BASH_REMATCH[2]} == [Gg]* ]] && n=$((n * 1024))
          ((n > 0)) || die "size must be positive: $1"
          sizes+=("$n")
        else
          die "'$1' is neither a build folder nor a size (see --help)"
        fi ;;
    esac
    shift
  done
}

# bench_finish_args DEFAULT_SIZES...: --quick's defaults (64 MiB, one run;
# explicit sizes and -r still win), then DEFAULT_SIZES and 3 runs; checks
# -r and resolves `build` to an absolute path (default: build/ next to
# bench/).
bench_finish_args() {
  if ((quick)); then
    ((${#sizes[@]})) || sizes=(64)
    [[ -n $repeat ]] || repeat=1
  fi
  ((${#sizes[@]})) || sizes=("$@")
  [[ -n $repeat ]] || repeat=3
  [[ $repeat =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive number, not '$repeat'"
  build=$(cd "${build:-$here/../build}" 2>/dev/null && pwd) || die "no build folder ${build:-$here/../build}"
}

# Sets imgtool, memhog, tickgap and timed_run, building whichever is
# missing, and checks that gdb is there.
bench_tools() {
  imgtool=$build/imgtool
  memhog=$build/bench/memhog
  tickgap=$build/bench/tickgap
  timed_run=$build/bench/timed_run
  if [[ ! -x $imgtool || ! -x $memhog || ! -x $tickgap || ! -x $timed_run ]]; then
    echo "building imgtool memhog tickgap timed_run in $build" >&2
    cmake --build "$build" --target imgtool memhog tickgap timed_run >&2 || die "build failed"
  fi
  command -v gdb >/dev/null || die "gdb is not installed"
}

# bench_temp: `tmp`, a fresh folder under the build folder (the same
# filesystem as the sources, not /tmp), removed on exit with every process
# still listed in `pids` killed and reaped.
bench_temp() {
  tmp=$(mktemp -d "$build/$bench_name.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'echo "$bench_name: interrupted, cleaning up" >&2; exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}
bench_cleanup() {
  local p
  trap - EXIT INT TERM HUP
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
forget_pid() {
  local p keep=()
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# The median of the arguments, "-" for none.
median() {
  (($#)) || { echo "-"; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# a / b, "-" when either is missing ("-") or b is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else printf "-" }'; }
# mib BYTES [DECIMALS]: bytes in MiB (one decimal by default).
mib() { awk -v b="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, b / 1048576 }'; }
label() { if (($1 % 1024 == 0)); then echo "$(($1 / 1024)) GiB"; else echo "$1 MiB"; fi; }

# start_memhog MIB DIR [ticks|core]: starts memhog and waits for its
# "ready"; sets MH_PID (also listed in `pids`). ticks: with the tick file
# DIR/ticks (tickgap reads how long it was stopped); core: the same, run in
# DIR with ulimit -c unlimited, for the kernel's core dump (core_pattern
# "core"); neither: no tick file (its shared mapping changes after a dump,
# which restore rightly refuses).
start_memhog() {
  local size=$1 dir=$2 mode=${3:-}
  mkdir -p "$dir"
  rm -f "$dir/out"
  case $mode in
    ticks) "$memhog" "$size" --ticks "$dir/ticks" >"$dir/out" 2>&1 </dev/null & ;;
    core) (ulimit -c unlimited && cd "$dir" && exec "$memhog" "$size" --ticks "$dir/ticks") >"$dir/out" 2>&1 </dev/null & ;;
    "") "$memhog" "$size" >"$dir/out" 2>&1 </dev/null & ;;
    *) die "start_memhog: unknown mode '$mode'" ;;
  esac
  MH_PID=$!
  pids+=("$MH_PID")
  local deadline=$((SECONDS + 600))
  until grep -q '^ready$' "$dir/out" 2>/dev/null; do
    kill -0 "$MH_PID" 2>/dev/null || die "memhog $size exited early: $(cat "$dir/out")"
    ((SECONDS < deadline)) || die "memhog $size not ready after 600 s"
    sleep 0.02
  done
}
stop_memhog() {
  kill -KILL "$1" 2>/dev/null || true
  { wait "$1"; } 2>/dev/null || true
  forget_pid "$1"
}

# kernel_core MIB DIR: the kernel's core dump of a fresh memhog run in DIR
# (core_pattern "core"), timed from kill -SEGV until wait returns (the core
# is complete before the exit). Sets KERNEL_CORE (its path), KERNEL_T0 and
# KERNEL_T1 (now() before and after) and KERNEL_STATUS (the wait status).
# shellcheck disable=SC2034  # the KERNEL_* results are for the sourcing script
kernel_core() {
  local size=$1 dir=$2 kpid
  start_memhog "$size" "$dir" core
  kpid=$MH_PID
  KERNEL_STATUS=0
  KERNEL_T0=$(now)
  kill -SEGV "$kpid"
  { wait "$kpid"; } 2>/dev/null || KERNEL_STATUS=$?  # quiet: no "Segmentation fault (core dumped)"
  KERNEL_T1=$(now)
  forget_pid "$kpid"
  KERNEL_CORE=$(find "$dir" -maxdepth 1 -name 'core*' -type f | head -1)
  [[ -n $KERNEL_CORE ]] || die "no core file after SIGSEGV (status $KERNEL_STATUS; core_pattern $(cat /proc/sys/kernel/core_pattern); ulimit -Hc $(ulimit -Hc))"
}
