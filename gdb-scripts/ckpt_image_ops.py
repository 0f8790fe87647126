# ckpt_image_ops.py: gdb commands that act on the loaded image as a whole
# (docs/GDB.md). Loaded by ckpt.py, after it; gdb's `source` runs both in
# the same __main__ namespace, so the helpers of ckpt.py (_core_path,
# _imgtool, _command, _Fail, _out) and of ckpt_live.py (settle) are used
# here as they are. Adds:
#
#   ckpt diff OTHER       what changed between the loaded image and OTHER
#                         (imgtool diff)
#   ckpt restore-here     restore the loaded image and go on debugging it
#                         live in this gdb session

import os
import signal
import subprocess
import tempfile

import gdb


def _shown_image():
    """(file, pid) of the image gdb shows: under 'imgtool gdb --pid N' the
    whole tree file and N, else the loaded core and the pid gdb shows."""
    core = _core_path()
    if core is None:
        raise _Fail("no image is loaded (use 'core-file IMAGE', or start gdb with 'imgtool gdb IMAGE')")
    whole = os.environ.get("CKPT_TREE_IMAGE")
    pid = gdb.selected_inferior().pid
    return (whole, pid) if whole else (core, pid)


def _run_imgtool(words, what):
    tool = _imgtool()
    try:
        proc = subprocess.run([tool] + words, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    except OSError as e:
        raise _Fail("cannot run imgtool (%s): %s (set CKPT_IMGTOOL to its path)" % (tool, e.strerror or e))
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
        reason = lines[-1] if lines else "imgtool exited with status %d" % proc.returncode
        prefix = "imgtool %s: " % what
        raise _Fail(reason[len(prefix):] if reason.startswith(prefix) else reason)
    return proc.stdout.decode("utf-8", "replace")


class CkptDiff(gdb.Command):
    """What changed between the loaded checkpoint and another one.

Usage: ckpt diff OTHER
Compares the process gdb shows in the loaded image with the same process in
image OTHER (a later or earlier checkpoint of it): memory ranges whose bytes
differ with how many bytes, mappings added or removed, each thread's
registers, fds opened, closed and moved, signals and process attributes.
The same as 'imgtool diff IMAGE OTHER'."""

    _name = "ckpt diff"

    def __init__(self):
        super().__init__("ckpt diff", gdb.COMMAND_DATA, gdb.COMPLETE_FILENAME)

    @_command
    def invoke(self, arg, from_tty):
        words = gdb.string_to_argv(arg)
        if len(words) != 1:
            raise _Fail("usage: ckpt diff OTHER")
        image, pid = _shown_image()
        args = ["diff", image, os.path.expanduser(words[0])]
        if pid and os.environ.get("CKPT_TREE_IMAGE"):
            args += ["--pid", str(pid)]
        _out(_run_imgtool(args, "diff").rstrip("\n"))


class CkptRestoreHere(gdb.Command):
    """Restore the loaded image and debug it live, without leaving gdb.

Usage: ckpt restore-here [--lazy] [--reopen-changed-files]
Runs 'imgtool restore IMAGE --detach --leave-stopped', so that every
process of the image comes back with its pids, stopped before its first
instruction; drops the core file, attaches to the process gdb showed and
runs 'ckpt settle'. From there 'continue', breakpoints and watchpoints work
from the checkpointed instant, as under 'imgtool restore IMAGE --gdb'. The
other processes of a tree image run on once gdb holds this one. The
restored process is not gdb's child, so gdb's rules for attached processes
apply: 'detach' or quitting gdb leaves it running on, 'kill' ends it.
'core-file IMAGE' goes back to the image."""

    _name = "ckpt restore-here"

    def __init__(self):
        super().__init__("ckpt restore-here", gdb.COMMAND_RUNNING)

    @_command
    def invoke(self, arg, from_tty):
        options = gdb.string_to_argv(arg)
        for o in options:
            if o not in ("--lazy", "--reopen-changed-files"):
                raise _Fail("'ckpt restore-here' takes --lazy and --reopen-changed-files only, not '%s'" % o)
        image, pid = _shown_image()
        info = _run_imgtool_info(image)
        root = info.get("identity", {}).get("root_pid")
        pids = [p.get("pid") for p in info.get("processes", [])]
        target = pid if pid in pids else root
        with tempfile.TemporaryDirectory(prefix="ckpt-restore-here.") as tmp:
            pidfile = os.path.join(tmp, "pid")
            _run_imgtool(["restore", image, "--detach", "--leave-stopped", "--pidfile", pidfile] + options,
                         "restore")
        # The core is no longer what gdb should read: the live process is.
        gdb.execute("core-file", to_string=True)
        gdb.execute("attach %d" % target, from_tty)
        settle()
        for p in pids:
            if p != target:
                try:
                    os.kill(p, signal.SIGCONT)
                except OSError:
                    pass


CkptDiff()
CkptRestoreHere()
