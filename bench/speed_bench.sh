#!/usr/bin/env bash
# Speed side by side: imgtool against gdb gcore, the kernel's core dump and
# CRIU 4.2, in one run, on memhog processes holding N MiB of touched
# anonymous memory. See bench/README.md ("speed_bench.sh").
#
#   bench/speed_bench.sh [--quick] [-r R] [BUILD_DIR] [SIZES...]
#
#   BUILD_DIR  the CMake build folder (default: build/ next to bench/)
#   SIZES      MiB, or with a suffix: 256M, 1G (default: 256 1024 4096, and
#              16384 too when BENCH_BIG=1)
#   -r R       repetitions per figure, median reported (default 3)
#   --quick    smoke run: sizes 64, R=1 (explicit SIZES / -r still win)
#   CRIU=PATH  the criu binary (default: built by ../shared/peers/build-criu.sh
#              into /tmp/criu-4.2 if that script exists)
set -euo pipefail
export LC_ALL=C

bench_name=speed_bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

# A restored process whose restorer exits (criu restore -d) is re-parented;
# pid 1 on the project machines does not reap, and a zombie would keep the
# pid the next restore needs. So the script runs as a child subreaper
# (bash reaps whatever it adopts).
if [[ -z ${SPEED_BENCH_SUBREAPER:-} ]]; then
  export SPEED_BENCH_SUBREAPER=1
  exec python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0: sys.exit("speed_bench: PR_SET_CHILD_SUBREAPER failed")
os.execv("/bin/bash", ["bash"] + sys.argv[1:])' "$0" "$@"
fi

bench_parse_args "$@"
default_sizes=(256 1024 4096)
[[ ${BENCH_BIG:-0} == 1 ]] && default_sizes+=(16384)
bench_finish_args "${default_sizes[@]}"
(($(id -u) == 0)) || die "run as root (ptrace, drop_caches, criu)"

bench_tools
[[ -x /usr/bin/time ]] || die "/usr/bin/time is not installed (Debian package 'time')"

# CRIU: skipped with one line when it cannot be built or `criu check` fails.
criu=${CRIU:-}
criu_skip=""
if [[ -z $criu ]]; then
  script=$here/../../shared/peers/build-criu.sh
  [[ -x $script ]] || script=/work/shared/peers/build-criu.sh
  if [[ -x /tmp/criu-4.2/criu/criu ]]; then
    criu=/tmp/criu-4.2/criu/criu
  elif [[ -f $script ]]; then
    echo "building CRIU 4.2 with $script (once)" >&2
    criu=$(bash "$script" 2>/dev/null | tail -1) || criu=""
  fi
fi
if [[ -z $criu || ! -x $criu ]]; then
  criu_skip="CRIU rows skipped: no criu binary (build-criu.sh failed or is missing)"
elif ! "$criu" check >/dev/null 2>&1; then
  criu_skip="CRIU rows skipped: '$criu check' fails here"
fi

bench_temp
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
disk_mib() { du -sk "$@" | awk '{ s += $1 } END { printf "%.0f", s / 1024 }'; }

# Waits until pid $1 is gone (reaped by us, the subreaper) or 60 s (the
# exit of a 16 GiB process takes seconds).
await_gone() {
  local i
  for ((i = 0; i < 6000; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    { wait "$1"; } 2>/dev/null || true
    sleep 0.01
  done
}
# peak RSS in MiB from a `/usr/bin/time -f %M` log (its last line)
rss_of() { awk 'END { printf "%.1f", $1 / 1024 }' "$1"; }
# CPU seconds (user + system) from `/usr/bin/time -f "%M %U %S"`'s line, and
# of a live process (with its reaped children) from /proc/PID/stat: under
# load the wall clock measures the queue for the CPUs, CPU time the work.
cpu_of() { awk 'END { printf "%.2f", $2 + $3 }' "$1"; }
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
frozen_since_reset() { printf '%.3f' "$("$tickgap" read "$1")"; }
# put_dump_times TOOL TICKS [rss]: TOOL_dump (t0 to t1), TOOL_frozen (the
# longest tick gap in TICKS since its reset), TOOL_dump_then_sync (t0 to
# t2), TOOL_dump_cpu and with `rss` TOOL_dump_rss (from $dir/rss).
put_dump_times() {
  put "${1}_dump" "$(elapsed "$t0" "$t1")"
  put "${1}_frozen" "$(frozen_since_reset "$2")"
  put "${1}_dump_then_sync" "$(elapsed "$t0" "$t2")"
  if [[ ${3:-} == rss ]]; then put "${1}_dump_rss" "$(rss_of "$dir/rss")"; fi
  put "${1}_dump_cpu" "$(cpu_of "$dir/rss")"
}

# ---- header -----------------------------------------------------------------------
rev=$(git -C "$here/.." describe --always --dirty 2>/dev/null || echo unknown)
echo "speed_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ)  kernel $(uname -r)  $(nproc) cpus  $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)  ckpt $rev"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "sizes: ${sizes[*]} MiB   repetitions: $repeat (median)   temp: $tmp ($(df -P "$tmp" | awk 'NR == 2 { print $1 }'))"
echo "criu: ${criu_skip:-$criu ($("$criu" --version 2>/dev/null | head -1))}"
echo "core_pattern: $(cat /proc/sys/kernel/core_pattern)   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
# The disk's own rate, for the durable figures: 1 GiB written by dd into
# the page cache, then its fsync.
t0=$(now); dd if=/dev/zero of="$tmp/dd" bs=1M count=1024 status=none; t1=$(now)
sync "$tmp/dd"; t2=$(now)
echo "disk: 1 GiB dd into the page cache $(elapsed "$t0" "$t1") s, then its fsync $(elapsed "$t1" "$t2") s"
rm -f "$tmp/dd"
echo

# criu_leave_running_dump: one `criu dump --leave-running` of memhog $cpid
# (its tick file in $dir/c), timed as put_dump_times does imgtool's.
criu_leave_running_dump() {
  rm -rf "$dir/criu" && mkdir -p "$dir/criu"
  "$tickgap" reset "$dir/c/ticks"
  t0=$(now)
  /usr/bin/time -f "%M %U %S" -o "$dir/rss" "$criu" dump -t "$cpid" -D "$dir/criu" --shell-job --leave-running \
    -o dump.log >/dev/null 2>&1 || die "criu dump --leave-running failed: $(tail -3 "$dir/criu/dump.log")"
  t1=$(now)
  sync "$dir/criu"/* "$dir/criu"
  t2=$(now)
  put_dump_times criu "$dir/c/ticks" rss
  criu_mib=$(disk_mib "$dir/criu")
  rm -rf "$dir/criu"
}

declare -A M  # M[size,figure] = median
for size in "${sizes[@]}"; do
  name=$(label "$size")
  dir=$tmp/$size
  declare -A R=()  # R[figure] = space-separated runs
  put() { R[$1]="${R[$1]:-} $2"; echo "$name: $1 $2${3:+ ($3)}"; }

  # ---- leave-running dumps of one memhog: imgtool (plain, --sync), gcore, criu ----
  start_memhog "$size" "$dir" ticks
  pid=$MH_PID
  # CRIU dumps a memhog of its own: imgtool's dump leaves its dirty
  # tracker's userfaultfd in the target (for the next --parent dump),
  # an fd CRIU cannot dump. Both run at once, the tools alternating, when
  # two fit in the memory available with 2 GiB to spare; otherwise (16 GiB
  # on a 24 GiB machine: two would be killed by the OOM killer) CRIU's
  # runs after imgtool's is gone.
  criu_beside=0
  if [[ -z $criu_skip ]] && ((2 * size + 2048 <= $(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo))); then
    criu_beside=1
    start_memhog "$size" "$dir/c" ticks
    cpid=$MH_PID
  fi
  for ((i = 1; i <= repeat; i++)); do
    "$tickgap" reset "$dir/ticks"
    t0=$(now)
    /usr/bin/time -f "%M %U %S" -o "$dir/rss" "$imgtool" dump --pid "$pid" -o "$dir/img" 2>"$dir/log" ||
      die "imgtool dump failed: $(cat "$dir/log")"
    t1=$(now)
    sync "$dir/img" "$dir"
    t2=$(now)
    put_dump_times imgtool "$dir/ticks" rss
    img_mib=$(disk_mib "$dir/img")
    rm -f "$dir/img"

    "$tickgap" reset "$dir/ticks"
    t0=$(now)
    "$imgtool" dump --sync --pid "$pid" -o "$dir/img" 2>"$dir/log" || die "imgtool dump --sync failed: $(cat "$dir/log")"
    t1=$(now)
    put imgtool_dump_sync "$(elapsed "$t0" "$t1")"
    put imgtool_sync_frozen "$(frozen_since_reset "$dir/ticks")"
    rm -f "$dir/img"

    # The plain dump above uses snapshot mode (DECISIONS 131); the old way,
    # frozen for the whole dump, for comparison; and fork() of this memhog.
    "$tickgap" reset "$dir/ticks"
    "$imgtool" dump --full-freeze --pid "$pid" -o "$dir/img" 2>"$dir/log" ||
      die "imgtool dump --full-freeze failed: $(cat "$dir/log")"
    put imgtool_full_frozen "$(frozen_since_reset "$dir/ticks")"
    rm -f "$dir/img"
    rm -f "$dir/ticks.fork"
    kill -USR2 "$pid"
    for ((w = 0; w < 3000; w++)); do [[ -f $dir/ticks.fork ]] && break; sleep 0.01; done
    [[ -f $dir/ticks.fork ]] || die "memhog did not time its fork()"
    put fork_time "$(cat "$dir/ticks.fork")"

    "$tickgap" reset "$dir/ticks"
    t0=$(now)
    /usr/bin/time -f "%M %U %S" -o "$dir/rss" gdb -batch -nx -p "$pid" -ex "gcore $dir/g" >"$dir/gdb.log" 2>&1 || true
    t1=$(now)
    [[ -f $dir/g ]] || die "gcore wrote no file: $(tail -3 "$dir/gdb.log")"
    sync "$dir/g" "$dir"
    t2=$(now)
    put_dump_times gcore "$dir/ticks"
    gcore_mib=$(disk_mib "$dir/g")
    rm -f "$dir/g"

    if ((criu_beside)); then criu_leave_running_dump; fi
  done
  stop_memhog "$pid"
  if [[ -z $criu_skip ]] && ((!criu_beside)); then
    start_memhog "$size" "$dir/c" ticks
    cpid=$MH_PID
    for ((i = 1; i <= repeat; i++)); do criu_leave_running_dump; done
  fi
  if [[ -n ${cpid:-} ]]; then stop_memhog "$cpid"; cpid=""; fi

  # ---- kill dumps (a fresh memhog each), then restores of the last image ----
  # memhog without a tick file: its shared mapping changes after the dump,
  # which restore rightly refuses.
  # kill_dumps KEY PREPARE DUMP: `repeat` times a fresh memhog, PREPARE
  # (untimed), then DUMP PID timed as KEY (DUMP dies with its log on failure).
  kill_dumps() {
    local key=$1 prepare=$2 dump_fn=$3 i t0 t1
    for ((i = 1; i <= repeat; i++)); do
      start_memhog "$size" "$dir"
      "$prepare"
      t0=$(now)
      "$dump_fn" "$MH_PID"
      t1=$(now)
      put "$key" "$(elapsed "$t0" "$t1")"
      { wait "$MH_PID"; } 2>/dev/null || true
      forget_pid "$MH_PID"
    done
  }
  imgtool_dump_kill() {
    "$imgtool" dump --kill --pid "$1" -o "$dir/keep.img" 2>"$dir/log" || die "imgtool dump --kill failed: $(cat "$dir/log")"
  }
  kill_dumps imgtool_dump_kill true imgtool_dump_kill
  # restore_imgtool MODE [RUNS]: from the fork of imgtool until its pid
  # file is written (the process runs), timed by bench/timed_run: inotify
  # on the pid file, so no fork of `sleep` or `date` by this shell lands in
  # the timed span (under load a polling shell measured itself,
  # bench/README.md "Fourth pass (wip-warm...)"). At that instant timed_run
  # reads imgtool's VmHWM (its peak RSS) and the CPU time of imgtool, its
  # children and the restored process (its restorer's reads), then kills
  # the process and reaps all. RUNS (default 1) restores, their medians;
  # RESTORE_RANGE is the wall clock's min..max in ms.
  restore_imgtool() {
    local flag=() out
    [[ $1 == lazy ]] && flag=(--lazy)
    out=$("$timed_run" -r "${2:-1}" -p "$dir/rpid" -- "$imgtool" restore "${flag[@]}" --pidfile "$dir/rpid" "$dir/keep.img" \
      2>"$dir/rlog" </dev/null) || die "imgtool restore${flag[*]:+ ${flag[*]}} failed: $(cat "$dir/rlog")"
    # wall_ms M A..B cpu_ms M A..B runs N hwm_kib M A..B ready_cpu_ms M A..B
    read -r RESTORE_T RESTORE_RANGE RESTORE_RSS RESTORE_CPU < <(awk '{ printf "%.4f %s %.1f %.4f\n", $2 / 1000, $3, $10 / 1024, $13 / 1000 }' <<<"$out")
  }
  # A hot lazy restore takes a few ms: under load one run is mostly the
  # wait for a CPU, so each repetition is the median of 5 (DECISIONS 222).
  # The others take 0.1 s to minutes and run once per repetition (a cold
  # one needs its own drop_caches).
  lazy_hot_runs=5
  for mode in eager lazy; do
    for ((i = 1; i <= repeat; i++)); do
      cat "$dir/keep.img" >/dev/null
      if [[ $mode == lazy ]]; then
        restore_imgtool lazy "$lazy_hot_runs"
        put imgtool_restore_lazy_hot "$RESTORE_T" "median of $lazy_hot_runs; $RESTORE_RANGE ms"
      else
        restore_imgtool eager
        put imgtool_restore_eager_hot "$RESTORE_T"
      fi
      put "imgtool_restore_${mode}_hot_cpu" "$RESTORE_CPU"
      [[ $mode == eager ]] && put imgtool_restore_rss "$RESTORE_RSS"
      drop_caches
      restore_imgtool $mode
      put "imgtool_restore_${mode}_cold" "$RESTORE_T"
      put "imgtool_restore_${mode}_cold_cpu" "$RESTORE_CPU"
    done
  done
  rm -f "$dir/keep.img"

  if [[ -z $criu_skip ]]; then
    criu_empty_dir() { rm -rf "$dir/criu" && mkdir -p "$dir/criu"; }
    criu_dump_kill() {
      "$criu" dump -t "$1" -D "$dir/criu" --shell-job -o dump.log >/dev/null 2>&1 ||
        die "criu dump failed: $(tail -3 "$dir/criu/dump.log")"
    }
    kill_dumps criu_dump_kill criu_empty_dir criu_dump_kill
    # criu restore -d returns once the tree runs (detached; we reap it).
    restore_criu() {
      local t0 t1 rp
      rm -f "$dir/criu/rpid"
      t0=$(now)
      /usr/bin/time -f "%M %U %S" -o "$dir/rss" "$criu" restore -D "$dir/criu" --shell-job -d --pidfile rpid \
        -o restore.log >/dev/null 2>&1 </dev/null || die "criu restore failed: $(tail -3 "$dir/criu/restore.log")"
      t1=$(now)
      rp=$(cat "$dir/criu/rpid")
      # criu's CPU and the restored process's (CRIU's restorer runs in it).
      RESTORE_CPU=$(add "$(cpu_of "$dir/rss")" "$(proc_cpu "$rp")")
      kill -KILL "$rp"
      await_gone "$rp"
      RESTORE_T=$(elapsed "$t0" "$t1") RESTORE_RSS=$(rss_of "$dir/rss")
    }
    for ((i = 1; i <= repeat; i++)); do
      cat "$dir/criu"/* >/dev/null
      restore_criu
      put criu_restore_eager_hot "$RESTORE_T"
      put criu_restore_eager_hot_cpu "$RESTORE_CPU"
      put criu_restore_rss "$RESTORE_RSS"
      drop_caches
      restore_criu
      put criu_restore_eager_cold "$RESTORE_T"
      put criu_restore_eager_cold_cpu "$RESTORE_CPU"
    done
    rm -rf "$dir/criu"
  fi

  # ---- the kernel's core dump of a fresh memhog, from kill -SEGV to exit ----
  for ((i = 1; i <= repeat; i++)); do
    kdir=$tmp/kernel-$size
    kernel_core "$size" "$kdir"
    sync "$KERNEL_CORE" "$kdir"
    t2=$(now)
    put kernel_dump "$(elapsed "$KERNEL_T0" "$KERNEL_T1")"
    put kernel_dump_then_sync "$(elapsed "$KERNEL_T0" "$t2")"
    kernel_mib=$(disk_mib "$KERNEL_CORE")
    rm -rf "$kdir"
  done
  rm -rf "$dir"

  for k in "${!R[@]}"; do
    # shellcheck disable=SC2086
    M[$size,$k]=$(median ${R[$k]})
  done
  M[$size,img_mib]=$img_mib M[$size,gcore_mib]=$gcore_mib M[$size,kernel_mib]=$kernel_mib
  M[$size,criu_mib]=${criu_mib:--}
  unset R
  echo
done

m() { echo "${M[$1,$2]:--}"; }
echo "Results: medians of $repeat, wall-clock seconds; 'then sync' = the tool's dump followed by"
echo "sync(1) of its files and folder; 'cold' = after drop_caches. Ratios < 1: imgtool faster."
echo
echo "| size | tool | dump s (page cache) | frozen s | dump until durable s | dump --kill s | restore hot s | restore cold s | lazy hot s | lazy cold s | image on disk MiB | peak RSS dump / restore MiB |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for s in "${sizes[@]}"; do
  n=$(label "$s")
  echo "| $n | imgtool | $(m "$s" imgtool_dump) | $(m "$s" imgtool_frozen) | $(m "$s" imgtool_dump_sync) (--sync); $(m "$s" imgtool_dump_then_sync) (then sync) | $(m "$s" imgtool_dump_kill) | $(m "$s" imgtool_restore_eager_hot) | $(m "$s" imgtool_restore_eager_cold) | $(m "$s" imgtool_restore_lazy_hot) | $(m "$s" imgtool_restore_lazy_cold) | $(m "$s" img_mib) | $(m "$s" imgtool_dump_rss) / $(m "$s" imgtool_restore_rss) |"
  if [[ -z $criu_skip ]]; then
    echo "| $n | CRIU 4.2 | $(m "$s" criu_dump) | $(m "$s" criu_frozen) | $(m "$s" criu_dump_then_sync) (then sync) | $(m "$s" criu_dump_kill) | $(m "$s" criu_restore_eager_hot) | $(m "$s" criu_restore_eager_cold) | - | - | $(m "$s" criu_mib) | $(m "$s" criu_dump_rss) / $(m "$s" criu_restore_rss) |"
  fi
  echo "| $n | gdb gcore | $(m "$s" gcore_dump) | $(m "$s" gcore_frozen) | $(m "$s" gcore_dump_then_sync) (then sync) | - | - | - | - | - | $(m "$s" gcore_mib) | - |"
  echo "| $n | kernel core | $(m "$s" kernel_dump) | - | $(m "$s" kernel_dump_then_sync) (then sync) | - | - | - | - | - | $(m "$s" kernel_mib) | - |"
done
echo
echo "Ratios imgtool / peer (like with like: page cache vs page cache, durable vs durable):"
echo
echo "| size | dump / CRIU | frozen / CRIU | durable (--sync) / CRIU then sync | dump --kill / CRIU dump | restore hot / CRIU | restore cold / CRIU | dump / gcore | durable / gcore then sync | dump / kernel core |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for s in "${sizes[@]}"; do
  echo "| $(label "$s") | $(ratio "$(m "$s" imgtool_dump)" "$(m "$s" criu_dump)") | $(ratio "$(m "$s" imgtool_frozen)" "$(m "$s" criu_frozen)") | $(ratio "$(m "$s" imgtool_dump_sync)" "$(m "$s" criu_dump_then_sync)") | $(ratio "$(m "$s" imgtool_dump_kill)" "$(m "$s" criu_dump_kill)") | $(ratio "$(m "$s" imgtool_restore_eager_hot)" "$(m "$s" criu_restore_eager_hot)") | $(ratio "$(m "$s" imgtool_restore_eager_cold)" "$(m "$s" criu_restore_eager_cold)") | $(ratio "$(m "$s" imgtool_dump)" "$(m "$s" gcore_dump)") | $(ratio "$(m "$s" imgtool_dump_sync)" "$(m "$s" gcore_dump_then_sync)") | $(ratio "$(m "$s" imgtool_dump)" "$(m "$s" kernel_dump)") |"
done
echo
echo "CPU seconds (user + system; dump: the tool; restore: the tool and the restored process until it runs),"
echo "medians of $repeat: under load the wall clock is mostly the queue for the CPUs, this is the work."
echo
echo "| size | dump imgtool | dump CRIU | dump gcore | imgtool / CRIU | imgtool / gcore | restore hot imgtool | CRIU | imgtool / CRIU | restore cold imgtool | CRIU | imgtool / CRIU |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for s in "${sizes[@]}"; do
  echo "| $(label "$s") | $(m "$s" imgtool_dump_cpu) | $(m "$s" criu_dump_cpu) | $(m "$s" gcore_dump_cpu) | $(ratio "$(m "$s" imgtool_dump_cpu)" "$(m "$s" criu_dump_cpu)") | $(ratio "$(m "$s" imgtool_dump_cpu)" "$(m "$s" gcore_dump_cpu)") | $(m "$s" imgtool_restore_eager_hot_cpu) | $(m "$s" criu_restore_eager_hot_cpu) | $(ratio "$(m "$s" imgtool_restore_eager_hot_cpu)" "$(m "$s" criu_restore_eager_hot_cpu)") | $(m "$s" imgtool_restore_eager_cold_cpu) | $(m "$s" criu_restore_eager_cold_cpu) | $(ratio "$(m "$s" imgtool_restore_eager_cold_cpu)" "$(m "$s" criu_restore_eager_cold_cpu)") |"
done
echo
echo "Frozen time of a leave-running dump (the memhog's own ticker: largest gap), against fork() of the same process:"
echo
echo "| size | imgtool (snapshot mode, the default) | imgtool --full-freeze | CRIU 4.2 | fork() | snapshot / fork | snapshot / CRIU |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for s in "${sizes[@]}"; do
  echo "| $(label "$s") | $(m "$s" imgtool_frozen) | $(m "$s" imgtool_full_frozen) | $(m "$s" criu_frozen) | $(m "$s" fork_time) | $(ratio "$(m "$s" imgtool_frozen)" "$(m "$s" fork_time)") | $(ratio "$(m "$s" imgtool_frozen)" "$(m "$s" criu_frozen)") |"
done
echo
[[ -n $criu_skip ]] && echo "$criu_skip"
echo "CRIU's lazy restore is not measured (it needs its lazy-pages daemon and a page server)."
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
