# ckpt_live.py: gdb commands for a live session on a restored process
# (`imgtool restore FILE --gdb`, docs/GDB.md "Live debugging"). Loaded by
# ckpt.py; adds:
#
#   ckpt settle         after attaching to a process held in a job-control
#                       stop: take the SIGSTOP each attach left pending, so
#                       that the first `continue` runs the program
#   ckpt attach PID     attach to another process of a restored tree in a
#                       new inferior, then `ckpt settle` it
#
# Why `ckpt settle` exists (kernel quirk, ptrace_attach() in
# kernel/ptrace.c): gdb attaches with PTRACE_ATTACH, which queues a SIGSTOP
# for the thread. A thread already in a group stop is in addition made to
# trap at once (JOBCTL_TRAP_STOP) and gdb takes that trap as its attach
# stop; the queued SIGSTOP is still pending, and the first `continue` of that
# thread reports "received signal SIGSTOP" instead of running the program.
# Every thread with a SIGSTOP pending is resumed alone here: it stops again
# at once, before any instruction (signals are taken on the way back to user
# mode), and gdb is told not to pass that signal on.

import os
import sys

import gdb

_SIGSTOP_BIT = 1 << (19 - 1)


def _sigstop_pending(pid, tid):
    try:
        with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & _SIGSTOP_BIT:
                    return True
    except OSError:
        pass
    return False


def _quietly(commands):
    """Runs gdb commands without their output. to_string takes the
    commands' own text, but gdb 13 prints stop reports ("received signal")
    through its CLI observers straight to its standard output, past
    to_string, `set logging redirect` and suppress-cli-notifications; so
    fd 1 points at /dev/null meanwhile."""
    gdb.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        for c in commands:
            gdb.execute(c, to_string=True)
    finally:
        gdb.flush()
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def settle():
    inf = gdb.selected_inferior()
    if inf.pid <= 0:
        raise gdb.GdbError("ckpt: no live process in this inferior (attach first)")
    selected = gdb.selected_thread()
    locking = gdb.parameter("scheduler-locking")
    handling = gdb.execute("info signals SIGSTOP", to_string=True)
    settled = 0
    try:
        _quietly(["handle SIGSTOP stop print nopass", "set scheduler-locking on"])
        for thread in inf.threads():
            if not _sigstop_pending(inf.pid, thread.ptid[1]):
                continue
            thread.switch()
            # Stops at once with the pending SIGSTOP; `queue-signal 0`
            # forgets it, so no later resume delivers it.
            _quietly(["continue", "queue-signal 0"])
            settled += 1
    finally:
        _quietly(["set scheduler-locking %s" % locking, _restore_handle(handling)])
        if selected is not None and selected.is_valid():
            selected.switch()
    return settled


def _restore_handle(info_text):
    # `info signals SIGSTOP` prints: SIGSTOP  Yes  Yes  Yes  Stopped (signal)
    for line in info_text.splitlines():
        words = line.split()
        if words and words[0] == "SIGSTOP" and len(words) >= 4:
            flags = [w == "Yes" for w in words[1:4]]
            return "handle SIGSTOP %s %s %s" % ("stop" if flags[0] else "nostop",
                                                 "print" if flags[1] else "noprint",
                                                 "pass" if flags[2] else "nopass")
    return "handle SIGSTOP stop print pass"


class CkptSettle(gdb.Command):
    """Take the SIGSTOPs left pending by attaching to a stopped process.

After gdb attaches to a process held in a job-control stop (as
'imgtool restore --gdb' leaves it), every thread still has the SIGSTOP of
the attach pending, and 'continue' would report "received signal SIGSTOP".
This command takes those signals without running any instruction of the
program. 'imgtool restore --gdb' runs it for you after the attach."""

    def __init__(self):
        super().__init__("ckpt settle", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("ckpt: 'ckpt settle' takes no argument")
        settle()


class CkptAttach(gdb.Command):
    """Attach to another process of a restored tree: ckpt attach PID.

Adds an inferior, attaches to PID there (a process 'imgtool restore --gdb'
left stopped) and runs 'ckpt settle'. Switch between processes with
'inferior N'."""

    def __init__(self):
        super().__init__("ckpt attach", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        try:
            pid = int(arg.strip())
        except ValueError:
            raise gdb.GdbError("ckpt: usage: ckpt attach PID")
        gdb.execute("add-inferior", to_string=True)
        newest = max(gdb.inferiors(), key=lambda i: i.num)
        gdb.execute("inferior %d" % newest.num, to_string=True)
        gdb.execute("attach %d" % pid, from_tty)
        settle()


CkptSettle()
CkptAttach()
