#!/usr/bin/env bash
# dump_ab.sh: `imgtool dump` of two builds side by side, and CRIU 4.2's dump
# of the same size, alternating in the same minutes (issue 12).
#
#   bench/dump_ab.sh [-r R] BUILD_A BUILD_B [SIZES...]
#
# For each size (MiB, or 1G; default 1024): one memhog for imgtool (both
# builds dump the same process; a first dump of each, not counted, arms
# its dirty tracker as a user's first dump would) and one for CRIU (the
# tracker's userfaultfd is an fd CRIU cannot dump). Each round runs A, B
# and CRIU (`criu dump --leave-running`, when /tmp/criu-4.2/criu/criu or
# $CRIU is there and `criu check` passes), starting with a different one
# each round; each dump goes to the page cache, and the image is deleted
# and the disk synced before the next (outside the timing). Prints each
# run, then medians of R (default 5) of wall clock and CPU (user + system
# of the dumping process and its threads; user alone too: the checksums
# are nearly all of it; and peak RSS), B/A, A/CRIU and B/CRIU, and the
# load average before and after: on a shared machine only figures of the
# same run compare.
set -euo pipefail
bench_name=dump_ab
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

repeat=5
args=()
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -r) (($# >= 2)) || die "-r needs a number"; repeat=$2; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
((${#args[@]} >= 2)) || die "need BUILD_A and BUILD_B (see --help)"
[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive number, not '$repeat'"
build_a=$(cd "${args[0]}" && pwd) || die "no folder ${args[0]}"
build_b=$(cd "${args[1]}" && pwd) || die "no folder ${args[1]}"
sizes=()
for s in "${args[@]:2}"; do
  [[ $s =~ ^([0-9]+)([Gg])?$ ]] || die "bad size '$s'"
  n=${BASH_REMATCH[1]}
  [[ -n ${BASH_REMATCH[2]} ]] && n=$((n * 1024))
  sizes+=("$n")
done
((${#sizes[@]})) || sizes=(1024)
(($(id -u) == 0)) || die "run as root (ptrace, criu)"
for b in "$build_a" "$build_b"; do [[ -x $b/imgtool ]] || die "no $b/imgtool"; done
# The target, not what is compared: $MEMHOG, or B's memhog (built there
# if missing; A may be a folder this script must not build in).
build=$build_b
memhog=${MEMHOG:-$build_b/bench/memhog}
if [[ ! -x $memhog ]]; then
  cmake --build "$build_b" --target memhog >&2 || die "cannot build memhog in $build_b"
fi
bench_temp

criu=${CRIU:-/tmp/criu-4.2/criu/criu}
if [[ ! -x $criu ]] || ! "$criu" check >/dev/null 2>&1; then
  echo "CRIU column skipped: no working $criu"
  criu=""
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
# run TOOL: one timed dump into $tmp/out; appends to W[TOOL] and C[TOOL].
declare -A W=() C=() U=() M=()
run() {
  local tool=$1 t0 t1
  rm -rf "$tmp/out" && mkdir -p "$tmp/out"
  t0=$(now)
  case $tool in
    A|B)
      local b=$build_a
      [[ $tool == B ]] && b=$build_b
      /usr/bin/time -f "%U %S %M" -o "$tmp/cpu" "$b/imgtool" dump --pid "$pid" -o "$tmp/out/img" 2>"$tmp/log" ||
        die "$tool: imgtool dump failed: $(cat "$tmp/log")" ;;
    CRIU)
      /usr/bin/time -f "%U %S %M" -o "$tmp/cpu" "$criu" dump -t "$cpid" -D "$tmp/out" --shell-job --leave-running \
        -o dump.log >/dev/null 2>&1 || die "criu dump failed: $(tail -3 "$tmp/out/dump.log")" ;;
  esac
  t1=$(now)
  local w c u m
  w=$(elapsed "$t0" "$t1")
  c=$(awk '{ printf "%.3f", $1 + $2 }' "$tmp/cpu")
  u=$(awk '{ printf "%.3f", $1 }' "$tmp/cpu")
  m=$(awk '{ printf "%.1f", $3 / 1024 }' "$tmp/cpu")
  W[$tool]="${W[$tool]:-} $w"
  C[$tool]="${C[$tool]:-} $c"
  U[$tool]="${U[$tool]:-} $u"
  M[$tool]="${M[$tool]:-} $m"
  echo "  $tool: wall $w s, cpu $c s (user $u), peak RSS $m MiB"
  rm -rf "$tmp/out"
  sync -f "$tmp"
}

echo "A: $build_a ($(git -C "$build_a/.." rev-parse --short HEAD 2>/dev/null || echo ?))"
echo "B: $build_b ($(git -C "$build_b/.." rev-parse --short HEAD 2>/dev/null || echo ?))"
tools=(A B)
[[ -n $criu ]] && tools+=(CRIU)
for size in "${sizes[@]}"; do
  W=() C=() U=() M=()
  start_memhog "$size" "$tmp/m"
  pid=$MH_PID
  cpid=""
  if [[ -n $criu ]]; then
    start_memhog "$size" "$tmp/c"
    cpid=$MH_PID
  fi
  for warm in "$build_a" "$build_b"; do
    "$warm/imgtool" dump --pid "$pid" -o "$tmp/warm.img" 2>"$tmp/log" || die "warm-up dump failed: $(cat "$tmp/log")"
    rm -f "$tmp/warm.img"
  done
  sync -f "$tmp"
  load0=$(load)
  echo "$(label "$size"): load average $load0"
  for ((r = 0; r < repeat; r++)); do
    n=${#tools[@]}
    for ((k = 0; k < n; k++)); do run "${tools[(r + k) % n]}"; done
  done
  load1=$(load)
  # shellcheck disable=SC2086
  {
    wa=$(median ${W[A]}) wb=$(median ${W[B]}) ca=$(median ${C[A]}) cb=$(median ${C[B]})
    ua=$(median ${U[A]}) ub=$(median ${U[B]})
    ma=$(median ${M[A]}) mb=$(median ${M[B]})
    wc=- cc=- uc=- mc=-
    [[ -n $criu ]] && wc=$(median ${W[CRIU]}) cc=$(median ${C[CRIU]}) uc=$(median ${U[CRIU]}) mc=$(median ${M[CRIU]})
  }
  echo "$(label "$size"), medians of $repeat, load average $load0 -> $load1:"
  echo "  wall s: A $wa, B $wb, CRIU $wc; B/A $(ratio "$wb" "$wa"), A/CRIU $(ratio "$wa" "$wc"), B/CRIU $(ratio "$wb" "$wc")"
  echo "  cpu s:  A $ca, B $cb, CRIU $cc; B/A $(ratio "$cb" "$ca"), A/CRIU $(ratio "$ca" "$cc"), B/CRIU $(ratio "$cb" "$cc")"
  echo "  user s: A $ua, B $ub, CRIU $uc; B/A $(ratio "$ub" "$ua")"
  echo "  peak RSS MiB: A $ma, B $mb, CRIU $mc"
  stop_memhog "$pid"
  [[ -n $cpid ]] && stop_memhog "$cpid"
done
