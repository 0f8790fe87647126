#!/usr/bin/env bash
# Scale benchmark (issue 15, "Scale"): dump, verify, info, gdb and restore of
# processes with many mappings, threads, fds, a huge sparse region, and of a
# tree of many processes, at three sizes each, so that one can see whether
# time grows linearly. Prints one table; see bench/README.md.
#
#   bench/scale_bench.sh [--quick] [--cases LIST] [BUILD_DIR]
#
#   BUILD_DIR     the CMake build folder (default: build/ next to bench/)
#   --quick       smoke run: the smallest size of each case only
#   --cases LIST  only these cases, comma-separated (maps,threads,fds,sparse,tree)
#
# Sizes: maps 25k/50k/100k (100k is past 65535 program headers: PN_XNUM),
# threads 250/500/1000, fds 2.5k/5k/10k, sparse 4/8/16 GiB with 16 pages
# touched, tree 50/100/200 processes. Needs root; raises vm.max_map_count
# for the run and puts it back.
set -euo pipefail
export LC_ALL=C

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "scale_bench: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build="" quick=0 cases="maps,threads,fds,sparse,tree"
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --quick) quick=1 ;;
    --cases) (($# > 1)) || die "--cases needs a list"; cases=$2; shift ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -d $1 ]] || die "no build folder $1"; build=$1 ;;
  esac
  shift
done
build=${build:-$here/../build}
imgtool=$build/imgtool
hog=$build/bench/scalehog
[[ -x $imgtool ]] || die "no $imgtool: build first"
[[ -x $hog ]] || die "no $hog: build the bench targets first (ninja -C $build scalehog)"
((EUID == 0)) || die "run as root (restore needs CAP_CHECKPOINT_RESTORE)"

work=$(mktemp -d /tmp/scale_bench.XXXXXX)
old_map_count=$(cat /proc/sys/vm/max_map_count)
hog_pid=""
cleanup() {
  [[ -n $hog_pid ]] && kill -9 "$hog_pid" 2>/dev/null || true
  pkill -9 -f "$hog " 2>/dev/null || true
  echo "$old_map_count" > /proc/sys/vm/max_map_count
  rm -rf "$work" /tmp/scalehog-fds-*
}
trap cleanup EXIT
echo 262144 > /proc/sys/vm/max_map_count

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Starts scalehog KIND N and waits for "ready"; sets hog_pid.
start_hog() {
  local fifo=$work/out
  rm -f "$fifo"
  mkfifo "$fifo"
  "$hog" "$1" "$2" > "$fifo" &
  hog_pid=$!
  local line
  read -r -t 300 line < "$fifo" || die "scalehog $1 $2 did not get ready"
  [[ $line == ready ]] || die "scalehog $1 $2 said '$line'"
}

# Every process of the tree rooted at $1 (for the kill after restore), from
# one process listing: one `ps` per process took minutes for 200 processes
# on the loaded machine.
kill_tree() {
  local pids
  pids=$(ps -e -o pid=,ppid= | awk -v root="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END {
      n = 1; queue[1] = root
      for (i = 1; i <= n; i++) {
        print queue[i]
        m = split(kids[queue[i]], k, " ")
        for (j = 1; j <= m; j++) queue[++n] = k[j]
      }
    }')
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
}

printf '%-8s %7s | %7s %7s %7s %7s %8s | %9s\n' case size dump verify info gdb restore image_MiB
run_case() {
  local kind=$1 n=$2 img=$work/img.core
  start_hog "$kind" "$n"
  local t0 t1 t2 t3 t4 t5 t6
  t0=$(now)
  "$imgtool" dump --pid "$hog_pid" -o "$img" --kill > /dev/null || die "dump of $kind $n failed"
  t1=$(now)
  { wait "$hog_pid"; } 2> /dev/null || true
  hog_pid=""
  "$imgtool" verify "$img" > /dev/null || die "verify of $kind $n failed"
  t2=$(now)
  "$imgtool" info "$img" > /dev/null || die "info of $kind $n failed"
  t3=$(now)
  gdb -q -batch -ex 'info threads' "$hog" "$img" > /dev/null 2>&1 || die "gdb of $kind $n failed"
  t4=$(now)
  local pidfile=$work/pid
  rm -f "$pidfile"
  t5=$(now)
  "$imgtool" restore --detach --pidfile "$pidfile" "$img" || die "restore of $kind $n failed"
  t6=$(now)
  kill_tree "$(cat "$pidfile")"
  local mib
  mib=$(awk -v b="$(stat -c %s "$img")" 'BEGIN { printf "%.1f", b / 1048576 }')
  printf '%-8s %7s | %7s %7s %7s %7s %8s | %9s\n' "$kind" "$n" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" \
    "$(secs "$t2" "$t3")" "$(secs "$t3" "$t4")" "$(secs "$t5" "$t6")" "$mib"
  rm -f "$img"
}

declare -A sizes=(
  [maps]="25000 50000 100000"
  [threads]="250 500 1000"
  [fds]="2500 5000 10000"
  [sparse]="4 8 16"
  [tree]="50 100 200"
)
for kind in ${cases//,/ }; do
  [[ -n ${sizes[$kind]:-} ]] || die "no case $kind (see --help)"
  for n in ${sizes[$kind]}; do
    run_case "$kind" "$n"
    ((quick)) && break
  done
done
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
