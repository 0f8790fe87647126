#!/bin/bash
# restore_ab.sh [-r ROUNDS] BUILD_A BUILD_B [SIZES_MIB...]: eager `imgtool
# restore` of two builds and `criu restore` side by side, hot and cold page
# cache, in rotating order in the same minutes (decision 231).
#
# For each size (default 256 1024) one memhog is dumped with BUILD_B's
# imgtool (--kill) and another with CRIU 4.2 (`criu dump`, $CRIU or
# /tmp/criu-4.2/criu/criu; its rows are left out when it is missing). Each
# round restores the image with A, B and CRIU hot (after `cat` of the
# image), then each again cold (after drop_caches), the order of the three
# rotating each round. imgtool's figures are bench/timed_run's (fork of
# imgtool to its pid file; CPU of imgtool and the restored process then),
# CRIU's the wall clock of `criu restore -d` and the CPU of criu and its
# restored process. Prints the medians, B/A, each to CRIU, and the load
# average before and after. Run as root.
set -euo pipefail
export LC_ALL=C
rounds=5
if [[ ${1:-} == -r ]]; then rounds=$2; shift 2; fi
(($# >= 2)) || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 2; }
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd)
shift 2
sizes=("$@")
((${#sizes[@]})) || sizes=(256 1024)
(($(id -u) == 0)) || { echo "restore_ab: run as root (drop_caches, criu)" >&2; exit 1; }
for t in "$a/imgtool" "$b/imgtool" "$b/bench/memhog" "$b/bench/timed_run"; do
  [[ -x $t ]] || { echo "restore_ab: $t missing (build it)" >&2; exit 1; }
done
criu=${CRIU:-/tmp/criu-4.2/criu/criu}
[[ -x $criu ]] || { echo "restore_ab: no criu at $criu: its rows are left out"; criu=""; }
tmp=$(mktemp -d /var/tmp/restore_ab.XXXXXX)
mh=""
cleanup() { [[ -n $mh ]] && kill -KILL "$mh" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.2f", x / y; else printf "-" }'; }
# start_memhog MIB OUT: memhog with its stdout in OUT, a file of its own for
# each image (a restore checks that the file is as it was at the dump).
start_memhog() {
  "$b/bench/memhog" "$1" >"$2" 2>&1 </dev/null &
  mh=$!
  until grep -q '^ready$' "$2" 2>/dev/null; do
    kill -0 "$mh" 2>/dev/null || { echo "restore_ab: memhog exited: $(cat "$2")" >&2; exit 1; }
    sleep 0.05
  done
}
declare -A W C M
# one_restore TOOL: one restore of the image of TOOL (a, b or criu); adds
# its wall and CPU seconds to W[TOOL,mode] and C[TOOL,mode].
one_restore() {
  local tool=$1 out w c
  if [[ $tool == criu ]]; then
    rm -f "$tmp/criu/rpid"
    local t0=$EPOCHREALTIME
    /usr/bin/time -f "%U %S" -o "$tmp/ctime" "$criu" restore -D "$tmp/criu" --shell-job -d --pidfile rpid \
      -o restore.log >/dev/null 2>&1 </dev/null || { echo "restore_ab: criu restore failed" >&2; exit 1; }
    w=$(awk -v x="$t0" -v y="$EPOCHREALTIME" 'BEGIN { printf "%.4f", y - x }')
    local rp
    rp=$(cat "$tmp/criu/rpid")
    c=$(awk -v hz="$(getconf CLK_TCK)" 'NR == FNR { u = $1 + $2; next } { printf "%.4f", u + ($14 + $15) / hz }' \
      "$tmp/ctime" "/proc/$rp/stat")
    kill -KILL "$rp"
    while kill -0 "$rp" 2>/dev/null; do sleep 0.01; done
  else
    local dir=${!tool}
    out=$("$b/bench/timed_run" -r 1 -p "$tmp/rpid" -- "$dir/imgtool" restore --pidfile "$tmp/rpid" "$tmp/img" \
      2>"$tmp/rlog" </dev/null) || { echo "restore_ab: $dir/imgtool restore failed: $(cat "$tmp/rlog")" >&2; exit 1; }
    read -r w c < <(awk '{ printf "%.4f %.4f\n", $2 / 1000, $13 / 1000 }' <<<"$out")
  fi
  W[$tool,$mode]+="$w " C[$tool,$mode]+="$c "
}
echo "restore_ab: $(date -u +%H:%M:%SZ) A=$a B=$b rounds=$rounds load $(cut -d' ' -f1-3 /proc/loadavg)"
tools=(a b)
[[ -n $criu ]] && tools+=(criu)
for size in "${sizes[@]}"; do
  W=() C=()
  start_memhog "$size" "$tmp/mh.$size.img.out"
  "$b/imgtool" dump --kill --pid "$mh" -o "$tmp/img" 2>"$tmp/dlog" || { echo "restore_ab: dump failed: $(cat "$tmp/dlog")" >&2; exit 1; }
  { wait "$mh"; } 2>/dev/null || true
  mh=""
  if [[ -n $criu ]]; then
    start_memhog "$size" "$tmp/mh.$size.criu.out"
    mkdir -p "$tmp/criu"
    "$criu" dump -t "$mh" -D "$tmp/criu" --shell-job -o dump.log >/dev/null 2>&1 || { echo "restore_ab: criu dump failed" >&2; exit 1; }
    { wait "$mh"; } 2>/dev/null || true
    mh=""
  fi
  for ((r = 0; r < rounds; r++)); do
    order=("${tools[@]:r%${#tools[@]}}" "${tools[@]:0:r%${#tools[@]}}")
    for mode in hot cold; do
      for tool in "${order[@]}"; do
        if [[ $mode == hot ]]; then cat "$tmp/img" "$tmp"/criu/* >/dev/null 2>&1 || true; else drop_caches; fi
        one_restore "$tool"
      done
    done
  done
  for mode in hot cold; do
    for tool in "${tools[@]}"; do
      M[$tool,w]=$(median <<<"${W[$tool,$mode]}") M[$tool,c]=$(median <<<"${C[$tool,$mode]}")
    done
    line="$size MiB $mode: wall A ${M[a,w]} B ${M[b,w]} (B/A $(ratio "${M[b,w]}" "${M[a,w]}")); CPU A ${M[a,c]} B ${M[b,c]} (B/A $(ratio "${M[b,c]}" "${M[a,c]}"))"
    if [[ -n $criu ]]; then
      line+="; CRIU wall ${M[criu,w]} CPU ${M[criu,c]}; A/CRIU $(ratio "${M[a,w]}" "${M[criu,w]}") B/CRIU $(ratio "${M[b,w]}" "${M[criu,w]}") (wall)"
    fi
    echo "$line"
    echo "  walls A: ${W[a,$mode]}| B: ${W[b,$mode]}${criu:+| CRIU: ${W[criu,$mode]}}"
  done
  rm -rf "$tmp/img" "$tmp/criu"
done
echo "restore_ab: done $(date -u +%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
