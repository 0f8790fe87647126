#!/usr/bin/env bash
# Dump benchmark: imgtool dump vs gdb gcore vs the kernel's own core dump, on
# memhog processes holding N MiB of touched anonymous memory. See
# bench/README.md for what is measured and how.
#
#   bench/dump_bench.sh [--quick] [-r R] [BUILD_DIR] [SIZES...]
#
#   BUILD_DIR  the CMake build folder (default: build/ next to bench/)
#   SIZES      memory sizes, in MiB, or with a suffix: 256M, 1G (default: 256 1024)
#   -r R       repetitions per measurement, median reported (default 3)
#   --quick    smoke run: sizes 64, R=1 (explicit SIZES / -r still win)
set -euo pipefail
export LC_ALL=C

bench_name=dump_bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_parse_args "$@"
bench_finish_args 256 1024
bench_tools
bench_temp

# ---- header -------------------------------------------------------------------
rev=$(git -C "$here/.." describe --always --dirty 2>/dev/null || echo unknown)
echo "dump_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ)  kernel $(uname -r)  $(nproc) cpus  ckpt $rev"
echo "sizes: ${sizes[*]} MiB   repetitions: $repeat (median)   temp: $tmp"
echo "temp filesystem: $(df -P "$tmp" | awk 'NR == 2 { print $1 " on " $6 }')"
if [[ $(stat -c %d "$tmp") != $(stat -c %d /work 2>/dev/null || stat -c %d "$tmp") ]]; then
  echo "warning: $tmp is not on the same filesystem as /work" >&2
fi
echo "core_pattern: $(cat /proc/sys/kernel/core_pattern)  (left unchanged)   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $(cat /proc/sys/kernel/core_pattern) == \|* ]]; then
  echo "warning: core_pattern pipes cores to a program; kernel core times measure that instead" >&2
fi
echo

rows=()
notes=()
for size in "${sizes[@]}"; do
  name=$(label "$size")
  dir=$tmp/$size
  start_memhog "$size" "$dir" ticks
  pid=$MH_PID

  # Noise floor: the largest tick gap while nobody touches the process.
  "$tickgap" reset "$dir/ticks"
  sleep 1
  idle=$(printf '%.3f' "$("$tickgap" read "$dir/ticks")")
  echo "$name: memhog pid $pid ready; idle largest tick gap over 1 s: $idle s"

  dump_t=() frozen_t=() sfrozen_t=() gcore_t=() gfrozen_t=()
  img_bytes=0 img_du=0 g_bytes=0 g_du=0
  for ((i = 1; i <= repeat; i++)); do
    # imgtool dump
    "$tickgap" reset "$dir/ticks"
    t0=$(now)
    "$imgtool" dump --stats --pid "$pid" -o "$dir/img" 2>"$dir/imgtool.log" ||
      die "imgtool dump failed: $(cat "$dir/imgtool.log")"
    t1=$(now)
    frozen=$("$tickgap" read "$dir/ticks") || die "memhog does not tick after imgtool dump (left stopped?)"
    frozen=$(printf '%.3f' "$frozen")
    kill -0 "$pid" 2>/dev/null || die "memhog died during imgtool dump"
    img_bytes=$(stat -c %s "$dir/img")
    img_du=$(du -k "$dir/img" | cut -f1)
    rm -f "$dir/img"
    dump_t+=("$(elapsed "$t0" "$t1")")
    frozen_t+=("$frozen")
    # What imgtool itself reports (dump --stats): from its first stop request.
    sfrozen=$(sed -n 's/^dump stats: frozen \([0-9.]*\) s.*/\1/p' "$dir/imgtool.log")
    [[ -n $sfrozen ]] || die "no 'dump stats' line from imgtool dump --stats: $(cat "$dir/imgtool.log")"
    sfrozen_t+=("$(printf '%.3f' "$sfrozen")")
    echo "$name: imgtool dump $i/$repeat: ${dump_t[-1]} s, frozen $frozen s (reported ${sfrozen_t[-1]} s), image $(mib "$img_bytes") MiB, du $(mib $((img_du * 1024))) MiB"

    # gdb gcore of the same process
    "$tickgap" reset "$dir/ticks"
    t0=$(now)
    gdb -batch -nx -p "$pid" -ex "gcore $dir/g" >"$dir/gdb.log" 2>&1 || true
    t1=$(now)
    [[ -f $dir/g ]] || die "gcore wrote no file: $(tail -5 "$dir/gdb.log")"
    gfrozen=$("$tickgap" read "$dir/ticks") || die "memhog does not tick after gcore"
    gfrozen=$(printf '%.3f' "$gfrozen")
    g_bytes=$(stat -c %s "$dir/g")
    g_du=$(du -k "$dir/g" | cut -f1)
    rm -f "$dir/g"
    gcore_t+=("$(elapsed "$t0" "$t1")")
    gfrozen_t+=("$gfrozen")
    echo "$name: gdb gcore    $i/$repeat: ${gcore_t[-1]} s, frozen $gfrozen s, file $(mib "$g_bytes") MiB, du $(mib $((g_du * 1024))) MiB"
  done
  stop_memhog "$pid"

  # Restore, eager and --lazy, from a hot page cache, of a memhog without the
  # tick file (its shared mapping changes after the dump, which restore
  # rightly refuses): from the start of imgtool restore to the moment it
  # reports the process running (it writes the pid file then). The restored
  # memhog is killed; imgtool, its parent, reaps it, freeing the pid.
  start_memhog "$size" "$dir"
  "$imgtool" dump --kill --pid "$MH_PID" -o "$dir/keep.img" 2>"$dir/imgtool.log" ||
    die "imgtool dump --kill failed: $(cat "$dir/imgtool.log")"
  wait "$MH_PID" 2>/dev/null || true
  forget_pid "$MH_PID"
  cat "$dir/keep.img" >/dev/null
  eager_t=() lazy_t=()
  for mode in eager lazy; do
    for ((i = 1; i <= repeat; i++)); do
      rm -f "$dir/rpid"
      flag=(); [[ $mode == lazy ]] && flag=(--lazy)
      t0=$(now)
      "$imgtool" restore "${flag[@]}" --pidfile "$dir/rpid" "$dir/keep.img" 2>"$dir/restore.log" &
      rjob=$!
      until [[ -s $dir/rpid ]]; do
        kill -0 "$rjob" 2>/dev/null || die "imgtool restore failed: $(cat "$dir/restore.log")"
      done
      t1=$(now)
      kill -KILL "$(cat "$dir/rpid")"
      wait "$rjob" 2>/dev/null || true
      if [[ $mode == lazy ]]; then lazy_t+=("$(elapsed "$t0" "$t1")"); else eager_t+=("$(elapsed "$t0" "$t1")"); fi
      echo "$name: restore $mode $i/$repeat: $(elapsed "$t0" "$t1") s"
    done
  done
  # Migration through a pipe: from the start of `dump --kill -o - | restore
  # -` to the moment restore reports the process running, of a fresh memhog
  # each time (ours: the shell reaps it as dump kills it, freeing its pid).
  migrate_t=()
  for ((i = 1; i <= repeat; i++)); do
    start_memhog "$size" "$dir"
    rm -f "$dir/rpid"
    t0=$(now)
    { "$imgtool" dump --kill --pid "$MH_PID" -o - 2>"$dir/imgtool.log" |
        "$imgtool" restore --pidfile "$dir/rpid" - 2>"$dir/restore.log"; } &
    rjob=$!
    until [[ -s $dir/rpid ]]; do
      kill -0 "$rjob" 2>/dev/null || die "dump -o - | restore - failed: $(cat "$dir/imgtool.log" "$dir/restore.log")"
      sleep 0.001
    done
    t1=$(now)
    wait "$MH_PID" 2>/dev/null || true
    forget_pid "$MH_PID"
    kill -KILL "$(cat "$dir/rpid")"
    wait "$rjob" 2>/dev/null || true
    migrate_t+=("$(elapsed "$t0" "$t1")")
    echo "$name: dump -o - | restore - $i/$repeat: ${migrate_t[-1]} s"
  done
  rm -rf "$dir"

  # The kernel's core dump of an identical memhog, fresh for every run: from
  # kill -SEGV to the moment wait returns (the core is complete before exit).
  kernel_t=()
  core_bytes=0 core_du=0
  for ((i = 1; i <= repeat; i++)); do
    kdir=$tmp/kernel-$size
    kernel_core "$size" "$kdir"
    core_bytes=$(stat -c %s "$KERNEL_CORE")
    core_du=$(du -k "$KERNEL_CORE" | cut -f1)
    rm -rf "$kdir"
    kernel_t+=("$(elapsed "$KERNEL_T0" "$KERNEL_T1")")
    echo "$name: kernel core  $i/$repeat: ${kernel_t[-1]} s, core $(mib "$core_bytes") MiB, du $(mib $((core_du * 1024))) MiB (exit status $KERNEL_STATUS)"
  done

  d=$(median "${dump_t[@]}")
  f=$(median "${frozen_t[@]}")
  sf=$(median "${sfrozen_t[@]}")
  mg=$(median "${migrate_t[@]}")
  g=$(median "${gcore_t[@]}")
  gf=$(median "${gfrozen_t[@]}")
  k=$(median "${kernel_t[@]}")
  re=$(median "${eager_t[@]}")
  rl=$(median "${lazy_t[@]}")
  rows+=("| $name | $d | $f | $g | $gf | $k | $(mib "$img_bytes") / $(mib $((img_du * 1024))) | $(mib "$g_bytes") / $(mib $((g_du * 1024))) | $(ratio "$g" "$d") | $(ratio "$k" "$d") | $re | $rl | $sf | $mg |")
  notes+=("$name: idle tick gap (noise floor) $idle s; kernel core file $(mib "$core_bytes") / $(mib $((core_du * 1024))) MiB"
          "$name runs (s): imgtool ${dump_t[*]} | frozen ${frozen_t[*]} | reported frozen ${sfrozen_t[*]} | pipe migration ${migrate_t[*]} | gcore ${gcore_t[*]} | gcore frozen ${gfrozen_t[*]} | kernel ${kernel_t[*]}")
  echo
done

echo "Results (median of $repeat; wall-clock seconds; sizes in MiB, logical / du -k):"
echo
echo "| size | imgtool dump s | frozen s | gcore s | gcore frozen s | kernel core s | image MiB / disk MiB | gcore file MiB / disk MiB | gcore/imgtool | kernel/imgtool | restore eager s | restore lazy s | frozen (dump --stats) s | dump -o - \\| restore - s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${notes[@]}"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat <<'EOF'
Reference, 1 GiB touched anonymous memory, quoted from
/work/shared/reference/machine-facts.md (measured in an EARLIER session, not by this run):
  CRIU 4.2        dump 0.50 s (leave running), target frozen 0.46 s, image RSS + 1 MiB,
                  restore 0.90 s (hot page cache), lazy (userfaultfd) 0.035 s
  DMTCP           dump 2.0 s (no gzip) / 29.9 s (default gzip), frozen for the whole checkpoint,
                  restore 0.88 s / 5.9 s,
                  image 1046 MiB (+22 MiB library copies)
  gdb gcore       1.56 s (256 MiB: 0.35 s), frozen for the whole dump
  kernel core     2.67 s (256 MiB: 0.35 s)
Note: like gcore and the kernel, plain imgtool dump leaves its image in the page cache (--sync fsyncs it;
bench/speed_bench.sh measures both, and CRIU, in the same run).
EOF
