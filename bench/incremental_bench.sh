#!/usr/bin/env bash
# Incremental chain benchmark (issue 11): for each size, a program holding
# N MiB of patterned anonymous memory (tests/programs/restore_incremental.c)
# is dumped whole, rewrites 10% of its pages, is dumped with --parent (the
# full dump armed dirty tracking, so only the written pages are read), once
# more with --parent and CKPT_DIRTY_TRACKING=off (every page compared), and
# the chain is merged. Prints, per size: full dump time and size, the
# tracked incremental dump's time, frozen time, size and size as a share of
# the full image, the compared one's time and frozen time, and the merge
# time. A last row, "tree", does the same for a tree of 3 processes sharing
# 16 MiB (tests/programs/restore_tree_incremental.c): full dump, a link in
# which a new child is stored whole, then the link measured (each process
# rewrote 10% of its pages; one child exited), its share of the full image,
# and the merge of the 3-link chain. See bench/README.md.
#
#   bench/incremental_bench.sh [BUILD_DIR] [SIZES...]
#
#   BUILD_DIR  the CMake build folder (default: build/ next to bench/)
#   SIZES      memory sizes in MiB (default: 256 1024)
#   IMGTOOL=PATH  dump with another imgtool (the programs stay BUILD_DIR's:
#                 an A/B of two builds in the same minutes); TREE=0 leaves
#                 out the tree row; QUICK=1 leaves out the compared dump and
#                 the merge (their columns print 0); PERCENT=N rewrites N %
#                 of the pages (scattered) instead of one page in ten;
#                 CPU=1 adds the tracked increment's user+sys CPU seconds
set -euo pipefail
export LC_ALL=C

die() { echo "incremental_bench: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=""
sizes=()
for a in "$@"; do
  case $a in
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) if [[ -z $build && ${#sizes[@]} -eq 0 && -d $a ]]; then build=$a
       elif [[ $a =~ ^[1-9][0-9]*$ ]]; then sizes+=("$a")
       else die "'$a' is neither a build folder nor a size in MiB"; fi ;;
  esac
done
((${#sizes[@]})) || sizes=(256 1024)
build=$(cd "${build:-$here/../build}" 2>/dev/null && pwd) || die "no build folder"
imgtool=${IMGTOOL:-$build/imgtool}
prog=$build/tests/restore/restore_incremental
tree_prog=$build/tests/restore/restore_tree_incremental
[[ -x $imgtool && -x $prog && -x $tree_prog ]] ||
  cmake --build "$build" --target imgtool ckpt_restore_incremental ckpt_restore_tree_incremental >&2 ||
  die "build failed"

tmp=$(mktemp -d "$build/incremental_bench.XXXXXX")
pid=""
cleanup() {
  [[ -n $pid ]] && { kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
size_of() { stat -c %s "$1"; }

frozen_of() { sed -n 's/^dump stats: frozen \([0-9.]*\) s.*/\1/p' "$1"; }

printf '%-6s %8s %12s %8s %8s %11s %6s %8s %8s %8s\n' MiB full_s full_bytes incr_s frozen incr_bytes share cmp_s frozen merge_s
for mib in "${sizes[@]}"; do
  rm -rf "$tmp"/*
  exec 3< <(exec "$prog" "$tmp/go" "$tmp" "$mib" ${PERCENT:+"$PERCENT"} 2>"$tmp/err")
  pid=$!
  read -r _ <&3   # "mem ADDRESS"
  read -r ready <&3
  [[ $ready == ready ]] || die "the program did not start"
  sync
  t=$(now); "$imgtool" dump --pid "$pid" --track-dirty -o "$tmp/full.core"; full_s=$(elapsed "$t")
  touch "$tmp/step1"
  while [[ ! -e $tmp/done1 ]]; do sleep 0.01; done
  sync
  t=$(now)
  if [[ ${CPU:-0} == 1 ]]; then
    /usr/bin/time -f 'cpu %U %S' -o "$tmp/incr.time" "$imgtool" dump --pid "$pid" --parent full.core \
      -o "$tmp/incr.core" --stats 2>"$tmp/incr.stats"
  else
    "$imgtool" dump --pid "$pid" --parent full.core -o "$tmp/incr.core" --stats 2>"$tmp/incr.stats"
  fi
  incr_s=$(elapsed "$t")
  grep -q ', tracked [1-9]' "$tmp/incr.stats" || die "dirty tracking was not used: $(cat "$tmp/incr.stats")"
  cmp_s=0 merge_s=0
  : >"$tmp/cmp.stats"
  if [[ ${QUICK:-0} == 0 ]]; then
    sync
    t=$(now); CKPT_DIRTY_TRACKING=off "$imgtool" dump --pid "$pid" --parent full.core -o "$tmp/cmp.core" --stats \
      2>"$tmp/cmp.stats"
    cmp_s=$(elapsed "$t")
    t=$(now); "$imgtool" merge "$tmp/incr.core" -o "$tmp/merged.core"; merge_s=$(elapsed "$t")
  fi
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  full=$(size_of "$tmp/full.core"); incr=$(size_of "$tmp/incr.core")
  printf '%-6s %8.3f %12s %8.3f %8.3f %11s %5.1f%% %8.3f %8.3f %8.3f\n' "$mib" "$full_s" "$full" "$incr_s" \
    "$(frozen_of "$tmp/incr.stats")" "$incr" "$(echo "100 * $incr / $full" | bc -l)" "$cmp_s" \
    "$(frozen_of "$tmp/cmp.stats")" "${merge_s:-0}"
  [[ ${CPU:-0} == 1 ]] && awk '/^cpu/ { printf "incr_cpu %.3f\n", $2 + $3 }' "$tmp/incr.time"
done

[[ ${TREE:-1} == 0 ]] && exit 0
# The tree row: link 2 (on link 1, on the full link 0) of restore_tree_incremental.
rm -rf "$tmp"/*
wait_done() { for f in "$@"; do while [[ ! -e $tmp/$f ]]; do sleep 0.01; done; done; }
exec 3< <(exec "$tree_prog" "$tmp/go" "$tmp" 2>"$tmp/err")
pid=$!
read -r _ _ child1 child2 <&3   # "pids ROOT C1 C2"
read -r _ <&3   # "region ADDRESS"
read -r ready <&3
[[ $ready == ready ]] || die "the tree program did not start"
sync
t=$(now); "$imgtool" dump --pid "$pid" -o "$tmp/link0.core"; full_s=$(elapsed "$t")
touch "$tmp/step1"; wait_done done1_0 done1_1 done1_2
"$imgtool" dump --pid "$pid" --parent link0.core -o "$tmp/link1.core"
touch "$tmp/step2"; wait_done done2_0 done2_1 done2_3
sync
t=$(now); "$imgtool" dump --pid "$pid" --parent link1.core -o "$tmp/link2.core" --stats 2>"$tmp/incr.stats"
incr_s=$(elapsed "$t")
t=$(now); CKPT_DIRTY_TRACKING=off "$imgtool" dump --pid "$pid" --parent link1.core -o "$tmp/cmp.core" --stats \
  2>"$tmp/cmp.stats"
cmp_s=$(elapsed "$t")
t=$(now); "$imgtool" merge "$tmp/link2.core" -o "$tmp/merged.core"; merge_s=$(elapsed "$t")
# The children outlive a killed root: killed by pid (child 2 exited at step 2).
kill -KILL "$child1" "$(cat "$tmp/child3")" 2>/dev/null || true
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=""
full=$(size_of "$tmp/link0.core"); incr=$(size_of "$tmp/link2.core")
printf '%-6s %8.3f %12s %8.3f %8.3f %11s %5.1f%% %8.3f %8.3f %8.3f\n' tree "$full_s" "$full" "$incr_s" \
  "$(frozen_of "$tmp/incr.stats")" "$incr" "$(echo "100 * $incr / $full" | bc -l)" "$cmp_s" \
  "$(frozen_of "$tmp/cmp.stats")" "$merge_s"
