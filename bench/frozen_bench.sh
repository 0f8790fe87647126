#!/usr/bin/env bash
# frozen_bench.sh [-r R] [BUILD_DIR] [SIZES...]: the frozen time of the
# default dump (snapshot mode, dirty tracker on) against one fork() of the
# same process (issue #11's aim: frozen <= 2x fork). Per size one memhog
# with its ticker; R rounds (default 3) of "default dump, then one fork()"
# (memhog times its own fork on SIGUSR2); round 1 is a first dump (arms the
# tracker), later rounds reuse it. Prints per round the ticker's largest
# gap, `--stats`' frozen figure, the fork time, the ratio, and the window's
# CPU ms (imgtool + tree, from CKPT_TRACE_TIMES=1) against fork()'s CPU
# (the ratio that holds on a loaded machine). OTHER_IMGTOOL=PATH runs
# the same rounds with another imgtool on a second memhog, the two
# imgtools' rounds alternating (before/after in the same minutes).
# PARENT=1: rounds after the first dump with --parent on the round before
# (tracked increments; memhog writes next to nothing between rounds, so
# this is the increment's fixed, per-GiB window). Sizes: MiB, or 256M, 1G (default 256 1024).
set -euo pipefail
bench_name=frozen_bench
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
bench_parse_args "$@"
bench_finish_args 256 1024
bench_tools
bench_temp

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| size | imgtool | round | ticker gap s | --stats frozen s | fork() s | gap / fork | window CPU ms (imgtool + tree) | fork() CPU ms | CPU / fork CPU |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
tools=("$imgtool")
[[ -n ${OTHER_IMGTOOL:-} ]] && tools+=("$OTHER_IMGTOOL")
# One round of tool on memhog pid (files in dir): a dump, then one fork().
one_round() {
  local tool=$1 pid=$2 dir=$3 i=$4
  "$tickgap" reset "$dir/ticks"
  local parent=()
  # Each link keeps its own file: the next names it by path.
  [[ -n ${PARENT:-} && $i -gt 1 ]] && parent=(--parent "$dir/link$((i - 1))")
  CKPT_TRACE_TIMES=1 "$tool" dump --stats --pid "$pid" "${parent[@]}" -o "$dir/img" >"$dir/stats" 2>"$dir/trace" ||
    die "dump failed: $(tail -3 "$dir/trace")"
  gap=$(printf '%.3f' "$("$tickgap" read "$dir/ticks")")
  frozen=$(grep -h -o "dump stats: frozen [0-9.]*" "$dir/stats" "$dir/trace" | head -1 | grep -o "[0-9.]*$" || echo -)
  # The trace's per-step CPU, imgtool and tree, summed over the window.
  cpu=$(awk '/^ckpt-frozen:/ { if (match($0, /cpu imgtool \+[0-9.]+, tree \+[0-9.]+/)) {
           split(substr($0, RSTART, RLENGTH), f, /[+,]/); s += f[2] + f[4] } } END { printf "%.1f", s }' "$dir/trace")
  if [[ -n ${PARENT:-} ]]; then mv -f "$dir/img" "$dir/link$i"; else rm -f "$dir/img"; fi
  rm -f "$dir/ticks.fork" "$dir/ticks.fork_cpu"
  kill -USR2 "$pid"
  for ((w = 0; w < 3000; w++)); do [[ -f $dir/ticks.fork ]] && break; sleep 0.01; done
  [[ -f $dir/ticks.fork ]] || die "memhog did not time its fork()"
  fork=$(cat "$dir/ticks.fork")
  fork_cpu=$(awk '{ printf "%.1f", $1 * 1000 }' "$dir/ticks.fork_cpu")
  tag=$([[ $tool == "$imgtool" ]] && echo this || echo other)
  echo "| $(label "$size") | $tag | $i$( ((i == 1)) && echo ' (first)') | $gap | $frozen | $(printf '%.4f' "$fork") | $(ratio "$gap" "$fork") | $cpu | $fork_cpu | $(ratio "$cpu" "$fork_cpu") |"
  [[ -n ${SHOW_TRACE:-} ]] && sed 's/^/    /' "$dir/trace"
  return 0
}
for size in "${sizes[@]}"; do
  # One memhog per imgtool, both alive; their rounds alternate, so that
  # both see the same minutes of load.
  hogs=()
  for k in "${!tools[@]}"; do
    start_memhog "$size" "$tmp/$size.$k" ticks
    hogs+=("$MH_PID")
  done
  for ((i = 1; i <= repeat; i++)); do
    for k in "${!tools[@]}"; do one_round "${tools[$k]}" "${hogs[$k]}" "$tmp/$size.$k" "$i"; done
  done
  for hog in "${hogs[@]}"; do stop_memhog "$hog"; done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
