#!/usr/bin/env bash
# The main job, end to end, on the bundled example program: start it,
# checkpoint it, look at the image with imgtool info and gdb, kill the
# original, restore it from the image and watch it carry on counting.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXAMPLE=build/examples/counter   # prints a counter once a second
IMGTOOL=build/imgtool

echo "== 0. set up (install packages, build) =="
./scripts/setup.sh

if [[ ! -x "$EXAMPLE" ]]; then
  echo "demo: $EXAMPLE was not built" >&2
  exit 1
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-demo.XXXXXX")
LOG="$OUT/counter.log"
ORIG_PID=""
RESTORED_PID=""

alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# `imgtool restore --pidfile PIDFILE IMAGE` as a background job (in the
# foreground imgtool waits for the restored process and exits with its
# status; the demo watches the log meanwhile): RESTORE_JOB and RESTORED_PID
# are set once the pid file is written (RESTORED_PID empty if it never is).
restore_in_background() {
  local image=$1 pidfile=$2
  echo "\$ $IMGTOOL restore --pidfile $pidfile $image &"
  "$IMGTOOL" restore --pidfile "$pidfile" "$image" &
  RESTORE_JOB=$!
  for _ in $(seq 100); do [[ -s "$pidfile" ]] && break; sleep 0.05; done
  RESTORED_PID=$(cat "$pidfile" 2>/dev/null || true)
}

# Ends what restore_in_background started (SIGTERM) and waits for its job.
stop_restored() {
  if alive "$RESTORED_PID"; then kill -TERM "$RESTORED_PID"; fi
  wait "$RESTORE_JOB" 2>/dev/null || true
  RESTORED_PID=""
}

cleanup() {
  local p
  for p in "$ORIG_PID" "$RESTORED_PID"; do
    if alive "$p"; then
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  if [[ -n "$ORIG_PID" ]]; then
    wait "$ORIG_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

gdb_batch() {
  gdb -q -nx -batch -iex 'set debuginfod enabled off' "$@"
}

echo
echo "== 1. start the example =="
# O_APPEND, so the restored process keeps appending to the same log.
"$EXAMPLE" >>"$LOG" 2>&1 </dev/null &
ORIG_PID=$!
echo "started $EXAMPLE as pid $ORIG_PID (output: $LOG)"
sleep 3
if ! alive "$ORIG_PID"; then
  echo "demo: $EXAMPLE exited early:" >&2
  cat "$LOG" >&2
  exit 1
fi
tail -n 3 "$LOG"

echo
echo "== 2. checkpoint it =="
HAVE_CKPT=0
if "$IMGTOOL" dump --help >/dev/null 2>&1; then
  IMAGE="$OUT/counter.ckpt"
  echo "\$ $IMGTOOL dump --pid $ORIG_PID -o $IMAGE"
  "$IMGTOOL" dump --pid "$ORIG_PID" -o "$IMAGE"
  HAVE_CKPT=1
else
  IMAGE="$OUT/counter.core"
  echo "imgtool dump is not built yet; taking a plain core image with gdb's gcore instead"
  echo "\$ gdb -batch -p $ORIG_PID -ex 'gcore $IMAGE'"
  gdb_batch -p "$ORIG_PID" -ex "gcore $IMAGE" >"$OUT/gcore.log" 2>&1 || {
    cat "$OUT/gcore.log" >&2
    echo "demo: gcore failed" >&2
    exit 1
  }
fi
ls -l "$IMAGE"
if alive "$ORIG_PID"; then
  echo "pid $ORIG_PID is still running, as after gcore"
fi

echo
echo "== 3. imgtool info =="
echo "\$ $IMGTOOL info $IMAGE"
if ! "$IMGTOOL" info "$IMAGE"; then
  echo "(imgtool info could not read this image)"
fi

echo
echo "== 4. open the image in gdb =="
echo "\$ gdb -batch -ex 'info threads' -ex 'bt' $EXAMPLE $IMAGE"
gdb_batch -ex 'info threads' -ex 'bt' "$EXAMPLE" "$IMAGE"

echo
echo "== 4b. what changed two seconds later: imgtool diff =="
# A second checkpoint of the running counter, compared with the first: the
# counter's global, the ticker thread's stack and registers.
if [[ $HAVE_CKPT == 1 ]] && "$IMGTOOL" diff --help >/dev/null 2>&1; then
  sleep 2
  "$IMGTOOL" dump --pid "$ORIG_PID" -o "$OUT/counter-later.ckpt"
  echo "\$ $IMGTOOL diff $IMAGE $OUT/counter-later.ckpt"
  "$IMGTOOL" diff "$IMAGE" "$OUT/counter-later.ckpt"
fi

echo
echo "== 5. kill the original and restore it from the image =="
if [[ $HAVE_CKPT == 1 ]] && "$IMGTOOL" restore --help >/dev/null 2>&1; then
  # The state the restored process must have again, field by field.
  cp "/proc/$ORIG_PID/maps" "$OUT/maps.original"
  grep -E '^(Cap|NoNewPrivs|Seccomp|SigIgn|SigCgt)' "/proc/$ORIG_PID/status" >"$OUT/status.original"
  kill -TERM "$ORIG_PID"
  wait "$ORIG_PID" 2>/dev/null || true
  echo "killed pid $ORIG_PID"
  old_pid=$ORIG_PID
  ORIG_PID=""
  lines_before=$(wc -l <"$LOG")

  restore_in_background "$IMAGE" "$OUT/restored.pid"
  if [[ -z "$RESTORED_PID" ]]; then
    wait "$RESTORE_JOB" || true
    echo "demo: imgtool restore did not start the process" >&2
    exit 1
  fi
  echo "restored as pid $RESTORED_PID (original pid was $old_pid)"

  echo
  echo "== 6. watch it continue =="
  sleep 4
  new_output=$(tail -n +"$((lines_before + 1))" "$LOG")
  if [[ -z "$new_output" ]]; then
    echo "demo: the restored process printed nothing in 4 seconds" >&2
    exit 1
  fi
  echo "output since the restore:"
  echo "$new_output"
  if diff "$OUT/maps.original" "/proc/$RESTORED_PID/maps" >"$OUT/maps.diff"; then
    echo "its memory map equals the original's, mapping for mapping ($(wc -l <"$OUT/maps.original") mappings; nothing of the restorer is left)"
  else
    echo "its memory map differs from the original's:"; cat "$OUT/maps.diff"
  fi
  if grep -E '^(Cap|NoNewPrivs|Seccomp|SigIgn|SigCgt)' "/proc/$RESTORED_PID/status" | diff "$OUT/status.original" - >/dev/null; then
    echo "and so do its capabilities, no_new_privs, seccomp and signal dispositions"
  else
    echo "its privilege or signal state differs from the original's" >&2
  fi
  if alive "$RESTORED_PID"; then
    echo "pid $RESTORED_PID is still running; stopping it"
    kill -TERM "$RESTORED_PID"
    status=0
    wait "$RESTORE_JOB" || status=$?
    echo "imgtool restore exited with $status (128+SIGTERM: the restored process's own fate)"
    RESTORED_PID=""
  fi
else
  if [[ $HAVE_CKPT == 0 ]]; then
    echo "imgtool dump is not built yet, so there is no ckpt image to restore; skipping"
  else
    echo "imgtool restore is not built yet; skipping"
  fi
fi

if [[ $HAVE_CKPT == 1 ]]; then
  echo
  echo "== 7. the same image as a self-restoring executable =="
  # convert rewrites the first 128 bytes and appends the launcher: no
  # memory is copied, and the result runs with nothing installed.
  echo "\$ $IMGTOOL convert $IMAGE --to exec -o $OUT/ckpt.elf"
  "$IMGTOOL" convert "$IMAGE" --to exec -o "$OUT/ckpt.elf"
  ls -l "$OUT/ckpt.elf"
  lines_before=$(wc -l <"$LOG")
  echo "\$ cd $OUT && env -i ./ckpt.elf --pidfile elf.pid &"
  (cd "$OUT" && exec env -i ./ckpt.elf --pidfile elf.pid) &
  ELF_JOB=$!
  for _ in $(seq 100); do [[ -s "$OUT/elf.pid" ]] && break; sleep 0.05; done
  RESTORED_PID=$(cat "$OUT/elf.pid" 2>/dev/null || true)
  sleep 3
  echo "pid $RESTORED_PID carries on from the image:"
  tail -n +"$((lines_before + 1))" "$LOG"
  if alive "$RESTORED_PID"; then kill -TERM "$RESTORED_PID"; fi
  status=0
  wait "$ELF_JOB" || status=$?
  echo "./ckpt.elf exited with $status, like imgtool restore"
  RESTORED_PID=""
fi

echo
echo "== 8. a process tree: a shell running a loop of sleeps =="
# bash forks a sleep child every second: the dump takes both (and any
# zombie), and the restore brings back every pid, parent and session.
TREE_LOG="$OUT/tree.log"
bash -c 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 1; done' >>"$TREE_LOG" 2>&1 </dev/null &
TREE_PID=$!
ORIG_PID=$TREE_PID
sleep 2.5
echo "\$ $IMGTOOL dump --pid $TREE_PID -o $OUT/tree.ckpt --kill"
"$IMGTOOL" dump --pid "$TREE_PID" -o "$OUT/tree.ckpt" --kill
wait "$TREE_PID" 2>/dev/null || true
ORIG_PID=""
echo "\$ $IMGTOOL info $OUT/tree.ckpt | sed -n '/^tree/,/^$/p'"
"$IMGTOOL" info "$OUT/tree.ckpt" | sed -n '/^tree/,/^$/p'
lines_before=$(wc -l <"$TREE_LOG")
restore_in_background "$OUT/tree.ckpt" "$OUT/tree.pid"
echo "restored; the tree as ps sees it (same pids as in the image):"
ps -o pid,ppid,pgid,sid,stat,comm --pid "$RESTORED_PID" --ppid "$RESTORED_PID" || true
sleep 2.5
echo "the loop carries on:"
tail -n +"$((lines_before + 1))" "$TREE_LOG"
stop_restored

echo
echo "== 9. a program that checkpoints itself (libckpt) =="
# ckpt_checkpoint() returns the checkpoint id in the original and 0 in the
# copy restored from the image, like fork(); an excluded 8 MiB scratch
# buffer is left out of the image and comes back zero-filled.
# Its output goes to a log opened O_APPEND: the restored copy's stdout is
# the original's, at the offset the checkpoint saw.
echo "\$ build/examples/selfckpt $OUT/self.ckpt >>$OUT/self.log"
build/examples/selfckpt "$OUT/self.ckpt" >>"$OUT/self.log" 2>&1 </dev/null
cat "$OUT/self.log"
ls -l "$OUT/self.ckpt"
echo "\$ $IMGTOOL restore $OUT/self.ckpt"
lines_before=$(wc -l <"$OUT/self.log")
"$IMGTOOL" restore "$OUT/self.ckpt" </dev/null
tail -n +"$((lines_before + 1))" "$OUT/self.log"

echo
echo "== 10. what restore could not bring back is refused before anything is lost =="
# A process holding a TCP connection its peer shut down one way (its
# epoll, AF_UNIX socketpair and TCP listener do come back): restore cannot
# recreate a connection in CLOSE_WAIT, so dump --kill refuses, names the
# socket and its state, and kills nothing.
python3 -c 'import socket, select, time; a, b = socket.socketpair(); p = select.epoll(); p.register(a); s = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(s.getsockname()); d, _ = s.accept(); d.shutdown(socket.SHUT_WR); time.sleep(0.1); print("ready", flush=True); time.sleep(60)' \
  >"$OUT/holder.log" 2>&1 </dev/null &
HOLDER_PID=$!
for _ in $(seq 100); do grep -q ready "$OUT/holder.log" 2>/dev/null && break; sleep 0.05; done
echo "\$ $IMGTOOL dump --pid $HOLDER_PID -o $OUT/holder.ckpt --kill"
"$IMGTOOL" dump --pid "$HOLDER_PID" -o "$OUT/holder.ckpt" --kill || echo "(exit status $?)"
if alive "$HOLDER_PID" && [[ ! -e "$OUT/holder.ckpt" ]]; then
  echo "pid $HOLDER_PID is still running, and no image was written"
fi
kill -KILL "$HOLDER_PID" 2>/dev/null || true
wait "$HOLDER_PID" 2>/dev/null || true

echo
echo "== 11. debug the checkpointed instant live: restore --gdb =="
# The same image once more, stopped before its first instruction, with gdb
# attached (docs/GDB.md); batch mode, and `kill` so that it ends here.
if [[ $HAVE_CKPT == 1 ]] && command -v gdb >/dev/null 2>&1 && [[ -z "$RESTORED_PID" ]]; then
  echo "\$ $IMGTOOL restore $IMAGE --gdb -- -batch -ex 'info threads' -ex 'bt 3' -ex kill"
  "$IMGTOOL" restore "$IMAGE" --gdb -- -batch -ex 'info threads' -ex 'bt 3' -ex kill </dev/null ||
    echo "(exit status $?)"
else
  echo "no ckpt image or no gdb; skipping"
fi

echo
echo "== 12. a tree sharing 32 MiB, checkpointed twice: stored once, then only what changed =="
# A python3 parent and its forked child share one MAP_SHARED|MAP_ANONYMOUS
# region of 32 MiB: the parent writes a counter into it, the child reads
# it back. The first image stores the region once for both processes; the
# second (--parent) stores only the pages written since the first; the
# restore from the second link brings back both pids, still sharing.
SHARE_LOG="$OUT/share.log"
cat >"$OUT/share.py" <<'EOF'
import mmap, os, sys, time
m = mmap.mmap(-1, 32 << 20)
for off in range(0, len(m), 4096): m[off] = 1
parent = os.getpid()
if os.fork() == 0:
    while os.getppid() == parent:
        print("child %d sees %d" % (os.getpid(), int.from_bytes(m[:8], "little")), flush=True); time.sleep(0.5)
    sys.exit(0)
n = 0
while True:
    n += 1; m[:8] = n.to_bytes(8, "little"); time.sleep(0.5)
EOF
python3 "$OUT/share.py" >>"$SHARE_LOG" 2>&1 </dev/null &
SHARE_PID=$!
ORIG_PID=$SHARE_PID
for _ in $(seq 200); do [[ $(grep -c sees "$SHARE_LOG" 2>/dev/null) -ge 2 ]] && break; sleep 0.05; done
echo "\$ $IMGTOOL dump --pid $SHARE_PID -o $OUT/share1.ckpt"
"$IMGTOOL" dump --pid "$SHARE_PID" -o "$OUT/share1.ckpt"
sleep 1
echo "\$ $IMGTOOL dump --pid $SHARE_PID --parent $OUT/share1.ckpt -o $OUT/share2.ckpt --kill"
"$IMGTOOL" dump --pid "$SHARE_PID" --parent "$OUT/share1.ckpt" -o "$OUT/share2.ckpt" --kill
{ wait "$SHARE_PID"; } 2>/dev/null || true
ORIG_PID=""
echo "two processes mapping 32 MiB each; the full image, then the incremental one:"
ls -sh "$OUT/share1.ckpt" "$OUT/share2.ckpt"
echo "\$ $IMGTOOL info $OUT/share1.ckpt | grep -E '^memory|stored once'"
"$IMGTOOL" info "$OUT/share1.ckpt" | grep -E '^memory|stored once'
lines_before=$(wc -l <"$SHARE_LOG")
restore_in_background "$OUT/share2.ckpt" "$OUT/share.pid"
sleep 1.6
echo "restored as pid $RESTORED_PID (was $SHARE_PID); the child still sees the parent's counter:"
tail -n +"$((lines_before + 1))" "$SHARE_LOG"
stop_restored

echo
echo "demo: done; images and logs are in $OUT"
