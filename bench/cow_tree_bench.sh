#!/usr/bin/env bash
# Copy-on-write tree benchmark (issue 9): python3 fills MiB of random bytes,
# then starts multiprocessing.Pool(4), whose workers (forked) share them
# copy-on-write; the tree is dumped and the image size printed, with how
# much of it imgtool stored once ("stored once" in `imgtool info`). A
# second row does the same with SHARED_MIB of shared anonymous memory
# (python's mmap.mmap(-1, n) is MAP_SHARED|MAP_ANONYMOUS) that every worker
# maps and writes a page of. With OTHER_IMGTOOL set, the same trees are
# dumped by it too, for the sizes before. Sizes only: no timing.
#
#   bench/cow_tree_bench.sh [BUILD_DIR] [MIB] [SHARED_MIB]
#
#   BUILD_DIR   the CMake build folder (default: build/ next to bench/)
#   MIB         random bytes the parent holds (default 128)
#   SHARED_MIB  shared anonymous memory of the second row (default 64)
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../build}
mib=${2:-128}
shared_mib=${3:-64}
imgtool=$build/imgtool
[[ -x $imgtool ]] || { echo "cow_tree_bench: no $imgtool (build first)" >&2; exit 1; }
work=$(mktemp -d)
pid=""
# The pool's workers first (by their parent's pid), then the parent.
cleanup() {
  cleanup_pool
  rm -rf "$work"
}
trap cleanup EXIT

# $1: python statements run before the pool starts (they set `data`, and
# `touch(i)`, what worker i does first).
start_pool() {
  python3 -c "
import mmap, multiprocessing as mp, os, sys, time
def touch(i):
    pass
$1
def work(i):
    touch(i)
    time.sleep(1000)
if __name__ == '__main__':
    mp.set_start_method('fork')
    pool = mp.Pool(4)
    pool.map_async(work, range(4))
    time.sleep(2)
    print('ready', flush=True)
    time.sleep(1000)
" >"$work/out" &
  pid=$!
  until grep -q ready "$work/out" 2>/dev/null; do sleep 0.2; done
}

dump_size() {  # $1: imgtool, $2: image
  "$1" dump --pid "$pid" -o "$2" >/dev/null
  stat -c %s "$2"
}

# $1: the row's title, $2: its python set-up (start_pool).
row() {
  start_pool "$2"
  echo "$1:"
  size=$(dump_size "$imgtool" "$work/after.img")
  echo "  image $((size >> 20)) MiB ($imgtool)"
  "$imgtool" info "$work/after.img" | grep 'stored once' | sed 's/^/  /' || true
  if [[ -n ${OTHER_IMGTOOL:-} ]]; then
    size=$(dump_size "$OTHER_IMGTOOL" "$work/before.img")
    echo "  image $((size >> 20)) MiB ($OTHER_IMGTOOL)"
  fi
  cleanup_pool
  rm -f "$work"/*.img
}

cleanup_pool() {
  if [[ -n $pid ]]; then
    for w in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do kill -9 "$w" 2>/dev/null; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}

row "python3 multiprocessing.Pool(4), parent holding $mib MiB of random bytes" \
  "data = os.urandom($mib << 20)"
row "python3 multiprocessing.Pool(4) sharing $shared_mib MiB of shared anonymous memory (mmap.mmap(-1, n)), each worker writing a page of it" \
  "data = mmap.mmap(-1, $shared_mib << 20)
data.write(os.urandom($shared_mib << 20))
def touch(i):
    data[i * 4096:(i + 1) * 4096] = bytes([i + 1]) * 4096"
