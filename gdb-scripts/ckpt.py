# ckpt.py: the ckpt project's own notes, inside gdb.
#
# Load it with `source /path/to/ckpt.py` (or start gdb with `imgtool gdb
# IMAGE`, which does that for you) on a core file written by `imgtool dump`.
# It adds:
#
#   info checkpoint     identity of the image, its parent chain, and whether
#                       (and why not) it can be restored on this machine
#   ckpt fds [PID]      file descriptors: number, type, path, position, flags
#   ckpt signals [PID]  dispositions (handlers named by gdb), and per thread
#                       the blocked and pending signals
#   ckpt maps [ADDR]    each mapping and where its bytes come from: this image,
#                       the mapped file, zero pages, the parent image
#   ckpt tree           the processes in the image, with pid and ppid
#   ckpt refresh        re-read the image (after it changed, or another core)
#   $ckpt_image_id      the image id, a string, set when a ckpt core is loaded
#
# Everything comes from `imgtool info --json IMAGE` (docs/INFO-JSON.md): this
# script never decodes the image format itself. imgtool is found through
# $CKPT_IMGTOOL, then `imgtool` on PATH, then next to this script's install
# location (PREFIX/share/ckpt/gdb/ckpt.py -> PREFIX/bin/imgtool).
#
# Any failure (no core, a plain core, a damaged image, no imgtool) is one
# line starting with "ckpt: ", raised as gdb.GdbError: never a traceback.

import functools
import json
import os
import re
import shutil
import subprocess

import gdb

_SCRIPT_PATH = os.path.realpath(globals().get("__file__") or "ckpt.py")
_SCHEMA = 1

# The image currently described: (key, info) where key identifies the core
# file's path and version on disk. Cleared by `ckpt refresh`.
_cache = {"key": None, "info": None, "error": None}
# Which target the event hooks last looked at: (inferior, connection, pid).
_last_seen_target = [None]


class _Fail(Exception):
    """A failure with a message for the user (without the "ckpt: " prefix)."""


# ---------------------------------------------------------------------------
# Finding the core file and imgtool, and asking imgtool about the core.


def _core_path():
    """Absolute path of the core file the selected inferior is looking at,
    or None when gdb is not debugging a core."""
    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)  # gdb >= 12
    if conn is not None and getattr(conn, "type", None) != "core":
        return None
    # Newer gdb (15+) names the core directly.
    corefile = getattr(inf, "corefile", None)
    if corefile is not None and getattr(corefile, "filename", None):
        return corefile.filename
    # gdb 13: `info target` lists "Local core dump file:" and on the next
    # line "\t`PATH', file type elf64-x86-64." (gdb prints the absolute path).
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Local core dump file:" and i + 1 < len(lines):
            item = lines[i + 1].strip()
            end = item.rfind("', file type")
            if item.startswith("`") and end > 0:
                return item[1:end]
    return None


def _imgtool():
    """The imgtool program to run, as a path or a name on PATH."""
    env = os.environ.get("CKPT_IMGTOOL")
    if env:
        return env
    found = shutil.which("imgtool")
    if found:
        return found
    here = os.path.dirname(_SCRIPT_PATH)
    # Installed: PREFIX/share/ckpt/gdb/ckpt.py and PREFIX/bin/imgtool.
    # Source tree: gdb-scripts/ckpt.py and build/imgtool.
    for candidate in (os.path.join(here, "..", "..", "..", "bin", "imgtool"),
                      os.path.join(here, "..", "build", "imgtool")):
        candidate = os.path.normpath(candidate)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise _Fail("cannot find imgtool (set CKPT_IMGTOOL to its path, or put it on PATH)")


def _run_imgtool_info(path):
    tool = _imgtool()
    try:
        proc = subprocess.run([tool, "info", "--json", path], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise _Fail("cannot run imgtool (%s): %s (set CKPT_IMGTOOL to its path)" % (tool, e.strerror or e))
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
        reason = lines[-1] if lines else "imgtool exited with status %d" % proc.returncode
        # "imgtool info: PATH: why" -> "why"
        for prefix in ("imgtool info: ", path + ": "):
            if reason.startswith(prefix):
                reason = reason[len(prefix):]
        if proc.returncode < 0:
            reason = "imgtool was killed by signal %d" % -proc.returncode
        raise _Fail("this core is not a valid ckpt image: " + reason)
    try:
        info = json.loads(proc.stdout.decode("utf-8", "surrogateescape"))
    except ValueError as e:
        raise _Fail("imgtool (%s) printed something that is not JSON: %s" % (tool, e))
    schema = info.get("schema") if isinstance(info, dict) else None
    if not isinstance(schema, int) or schema < _SCHEMA:
        raise _Fail("imgtool (%s) speaks info schema %r, this script needs %d" % (tool, schema, _SCHEMA))
    return info


def _file_key(path):
    try:
        st = os.stat(path)
    except OSError as e:
        raise _Fail("cannot read the core file %s: %s" % (path, e.strerror))
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _describe(path):
    """imgtool's description of the core at path (any kind), cached."""
    key = _file_key(path)
    if _cache["key"] != key:
        _cache["key"], _cache["info"], _cache["error"] = key, None, None
        try:
            _cache["info"] = _run_imgtool_info(path)
        except _Fail as e:
            _cache["error"] = str(e)
    if _cache["error"] is not None:
        raise _Fail(_cache["error"])
    return _cache["info"]


def _image():
    """(path, info) of the loaded core, which must be a ckpt image."""
    path = _core_path()
    if path is None:
        raise _Fail("no core file is loaded (use 'core-file IMAGE', or start gdb with 'imgtool gdb IMAGE')")
    info = _describe(path)
    if info.get("kind") != "ckpt":
        raise _Fail("this core is not a ckpt image: %s is an ordinary core file (no CKPT notes)" % path)
    return path, info


def _set_image_id(info):
    image_id = None
    if info is not None and info.get("kind") == "ckpt":
        image_id = info.get("identity", {}).get("image_id")
    gdb.set_convenience_variable("ckpt_image_id", image_id)


def _refresh_quietly():
    """Sets $ckpt_image_id for the loaded core, saying nothing on failure."""
    try:
        path = _core_path()
        info = _describe(path) if path else None
    except (_Fail, gdb.error):
        info = None
    _set_image_id(info)


def _command(func):
    """Turns every failure of a command into one "ckpt: ..." line."""

    @functools.wraps(func)
    def invoke(self, arg, from_tty):
        try:
            return func(self, arg, from_tty)
        except gdb.GdbError:
            raise
        except _Fail as e:
            raise gdb.GdbError("ckpt: %s" % e)
        except KeyboardInterrupt:
            raise gdb.GdbError("ckpt: interrupted")
        except gdb.error as e:
            raise gdb.GdbError("ckpt: %s" % e)
        except Exception as e:  # a bug here, or imgtool output we did not expect
            raise gdb.GdbError("ckpt: internal error in '%s': %s: %s" % (self._name, type(e).__name__, e))

    return invoke


# ---------------------------------------------------------------------------
# Formatting helpers.


def _out(text=""):
    gdb.write(text + "\n")


def _int(value):
    """JSON numbers and "0x..." strings alike."""
    if isinstance(value, int):
        return value
    return int(str(value), 0)


def _human(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            text = "%.1f" % (n / size)
            return (text[:-2] if text.endswith(".0") else text) + " " + unit
    return "%d B" % n


def _table(rows, right=()):
    """Rows of strings as aligned columns (the last column is not padded)."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = []
        for i, cell in enumerate(r):
            if i == len(r) - 1:
                cells.append(cell)
            elif i in right:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell.ljust(widths[i]))
        _out("  " + "  ".join(cells).rstrip())


# Linux x86-64 open flags (the image is always x86-64 Linux).
_O_ACCMODE = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR", 3: "O_ACCMODE"}
_O_FLAGS = [
    (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o4010000, "O_SYNC"), (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"), (0o40000, "O_DIRECT"), (0o100000, "O_LARGEFILE"), (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"),
    (0o20000000, "O_TMPFILE"), (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
]


def _open_flags(value):
    flags = _int(value)
    names = [_O_ACCMODE[flags & 3]]
    rest = flags & ~3
    for bit, name in _O_FLAGS:
        if rest & bit == bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append("0%o" % rest)
    return "|".join(names)


_SA_FLAGS = [
    (0x00000001, "SA_NOCLDSTOP"), (0x00000002, "SA_NOCLDWAIT"), (0x00000004, "SA_SIGINFO"),
    (0x00000400, "SA_UNSUPPORTED"), (0x00000800, "SA_EXPOSE_TAGBITS"), (0x04000000, "SA_RESTORER"),
    (0x08000000, "SA_ONSTACK"), (0x10000000, "SA_RESTART"), (0x40000000, "SA_NODEFER"),
    (0x80000000, "SA_RESETHAND"),
]


def _sa_flags(value):
    flags = _int(value)
    names = []
    for bit, name in _SA_FLAGS:
        if flags & bit:
            names.append(name)
            flags &= ~bit
    if flags:
        names.append("0x%x" % flags)
    return "|".join(names) if names else "0"


def _signal_list(names):
    return ", ".join(names) if names else "none"


def _symbol(addr):
    """gdb's name for a code address, "" when it has none."""
    name = ""
    try:
        block = gdb.current_progspace().block_for_pc(addr)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None and block.function is not None:
            func = block.function
            name = func.print_name
            entry = int(func.value().address)
            if addr != entry:
                name += "+%d" % (addr - entry)
    except (RuntimeError, gdb.error):
        name = ""
    if not name:
        try:
            text = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
        except gdb.error:
            text = ""
        m = re.match(r"^(.+?)(?: \+ (\d+))? in section \S+", text)
        if m:
            name = m.group(1) + ("+" + m.group(2) if m.group(2) else "")
    if not name:
        return ""
    lib = None
    try:
        lib = gdb.solib_name(addr)
    except gdb.error:
        pass
    return "<%s>%s" % (name, " in " + os.path.basename(lib) if lib else "")


def _gdb_threads():
    """lwp -> "Thread N" for the selected inferior's threads."""
    names = {}
    try:
        for th in gdb.selected_inferior().threads():
            names[th.ptid[1] or th.ptid[0]] = "Thread %d" % th.num
    except gdb.error:
        pass
    return names


def _process(info, arg):
    """The process a command is about: PID from arg, else the one gdb shows,
    else the image's root."""
    procs = info.get("processes", [])
    if not procs:
        raise _Fail("the image describes no process")
    arg = arg.strip()
    if arg:
        try:
            pid = int(gdb.parse_and_eval(arg))
        except gdb.error as e:
            raise _Fail("'%s' is not a pid: %s" % (arg, e))
        for p in procs:
            if p.get("pid") == pid:
                return p
        raise _Fail("process %d is not in this image (see 'ckpt tree')" % pid)
    shown = gdb.selected_inferior().pid
    root = info.get("identity", {}).get("root_pid")
    for want in (shown, root):
        for p in procs:
            if want and p.get("pid") == want:
                return p
    return procs[0]


# ---------------------------------------------------------------------------
# Commands.


class _Command(gdb.Command):
    def __init__(self, name, command_class=gdb.COMMAND_DATA, prefix=False, complete=gdb.COMPLETE_NONE):
        super().__init__(name, command_class, complete, prefix)
        self._name = name


class CkptPrefix(_Command):
    """Commands for ckpt images (cores written by 'imgtool dump').

The data comes from 'imgtool info --json' on the loaded core file.
See also 'info checkpoint' and the convenience variable $ckpt_image_id."""

    def __init__(self):
        super().__init__("ckpt", gdb.COMMAND_DATA, prefix=True)

    @_command
    def invoke(self, arg, from_tty):
        if arg.strip():
            raise _Fail("unknown ckpt command '%s' (see 'help ckpt')" % arg.strip())
        gdb.execute("help ckpt", from_tty)


class InfoCheckpoint(_Command):
    """Identity of the loaded ckpt image, its parent chain, and whether it can be restored here.

Usage: info checkpoint
Shows the image id, when and where it was written, by which writer, on which
kernel, the checkpoint id, the parent image chain of an incremental image, and
whether 'imgtool restore' would accept it on this machine (and if not, why)."""

    def __init__(self, name="info checkpoint", command_class=gdb.COMMAND_STATUS):
        super().__init__(name, command_class)

    @_command
    def invoke(self, arg, from_tty):
        if arg.strip():
            raise _Fail("'%s' takes no arguments" % self._name)
        path, info = _image()
        _set_image_id(info)
        ident = info.get("identity", {})
        fmt = info.get("format", {})
        rows = [
            ("Image:", path),
            ("Image id:", str(ident.get("image_id"))),
            ("Created:", "%s on host %s" % (ident.get("created"), ident.get("hostname"))),
            ("Checkpoint id:", "%s (root pid %s)" % (ident.get("checkpoint_id"), ident.get("root_pid"))),
            ("Kernel:", str(ident.get("kernel_release"))),
            ("Writer:", str(ident.get("writer"))),
            ("Format:", "%s.%s" % (fmt.get("major"), fmt.get("minor"))),
            ("Incremental:", "yes" if ident.get("incremental") else "no"),
        ]
        parent = info.get("parent")
        chain = info.get("chain") or []
        if not parent:
            rows.append(("Parent chain:", "none (a full image)"))
        else:
            rows.append(("Parent:", "%s at %s" % (parent.get("image_id"), parent.get("path_hint"))))
        if info.get("restorable"):
            rows.append(("Restorable here:", "yes"))
        else:
            rows.append(("Restorable here:", "no: %s" % info.get("not_restorable_because", "unknown reason")))
        width = max(len(r[0]) for r in rows)
        for label, value in rows:
            _out("%s %s" % (label.ljust(width), value))
        if parent and len(chain) > 1:
            _out("Chain (this image first):")
            for i, link in enumerate(chain):
                _out("  #%d  %s  %s" % (i, link.get("image_id"), link.get("path")))


class CkptInfo(InfoCheckpoint):
    """Same as 'info checkpoint'.

Usage: ckpt info"""

    def __init__(self):
        super().__init__("ckpt info", gdb.COMMAND_DATA)


class CkptFds(_Command):
    """File descriptors of the checkpointed process.

Usage: ckpt fds [PID]
Lists each descriptor with its number, type, path, file position and open
flags, and its kind's state (an eventfd's counter, a timerfd's settings,
inotify watches, a socket's peer and queue, an epoll's targets), as 'imgtool restore' will recreate them, then the image's SysV IPC objects
(shared memory, semaphore sets, message queues). PID selects a process of a
process-tree image (default: the process gdb shows)."""

    def __init__(self):
        super().__init__("ckpt fds")

    @_command
    def invoke(self, arg, from_tty):
        _, info = _image()
        proc = _process(info, arg)
        fds = proc.get("fds", [])
        _out("File descriptors of process %s (%d):" % (proc.get("pid"), len(fds)))
        if not fds:
            return
        rows = [("FD", "TYPE", "POSITION", "FLAGS", "PATH")]
        for f in fds:
            flags = _open_flags(f.get("flags", 0))
            if f.get("cloexec"):
                flags += " cloexec"
            path = str(f.get("path", ""))
            if f.get("unlinked"):
                path += " (deleted)"
            if f.get("state"):
                path += " (%s)" % f["state"]
            rows.append((str(f.get("fd")), str(f.get("type")), str(f.get("pos")), flags, path))
        _table(rows, right=(0, 2))
        states = [f for f in fds if f.get("state")]
        if states:
            _out("State of their kinds:")
            for f in states:
                _out("  fd %s %s: %s" % (f.get("fd"), f.get("type"), f.get("state")))
        _sysv_ipc(info)


def _sysv_ipc(info):
    """The image's SysV IPC objects, as 'imgtool info' lists them."""
    ipc = info.get("ipc") or {}
    objects = ipc.get("objects") or []
    if not objects:
        return
    where = "its own IPC namespace" if ipc.get("namespace") == "own" else "the host's IPC namespace"
    _out("SysV IPC objects (%s):" % where)
    for o in objects:
        line = "  %s %s key %s mode %s %s:%s" % (o.get("kind"), o.get("id"), o.get("key"), o.get("mode"),
                                                o.get("uid"), o.get("gid"))
        if o.get("kind") == "shm":
            line += "  %d bytes" % _int(o.get("size", 0))
            if o.get("locked"):
                line += ", locked"
            if o.get("removed"):
                line += ", marked for removal"
        elif o.get("kind") == "sem":
            line += "  values " + " ".join(str(v) for v in o.get("values", []))
        elif o.get("kind") == "msg":
            messages = o.get("messages", [])
            line += "  %d messages, %d bytes" % (len(messages), sum(_int(m.get("bytes", 0)) for m in messages))
        _out(line)


class CkptSignals(_Command):
    """Signal dispositions and per-thread blocked and pending signals.

Usage: ckpt signals [PID]
Lists every signal whose disposition is not the default, its handler named
by gdb from the loaded symbols, its flags and mask; then, per thread, the
blocked and pending signals, and the signals pending for the whole process."""

    def __init__(self):
        super().__init__("ckpt signals")

    @_command
    def invoke(self, arg, from_tty):
        _, info = _image()
        proc = _process(info, arg)
        sig = proc.get("signals", {})
        actions = sig.get("actions", [])
        _out("Signal dispositions of process %s:" % proc.get("pid"))
        rows = [("SIGNAL", "HANDLER", "FLAGS", "MASK")]
        for a in actions:
            handler = str(a.get("handler"))
            if handler.startswith("0x"):
                name = _symbol(_int(handler))
                if name:
                    handler += " " + name
            rows.append((str(a.get("signal")), handler, _sa_flags(a.get("flags", 0)),
                         _signal_list(a.get("mask", []))))
        _table(rows)
        _out("  (every other signal: SIG_DFL)" if actions else "  (every signal: SIG_DFL)")
        _out("Blocked and pending signals per thread:")
        names = _gdb_threads()
        rows = [("THREAD", "LWP", "NAME", "BLOCKED", "PENDING")]
        for t in proc.get("threads", []):
            tid = t.get("tid")
            rows.append((names.get(tid, "-"), str(tid), str(t.get("name") or "-"),
                         _signal_list(t.get("blocked", [])), _signal_list(t.get("pending", []))))
        _table(rows)
        _out("Pending for the whole process: %s" % _signal_list(sig.get("pending", [])))


_SOURCES = [
    ("stored_bytes", "image"),
    ("file_bytes", "file"),
    ("zero_bytes", "zero"),
    ("parent_bytes", "parent"),
    ("absent_bytes", "absent"),
]


class CkptMaps(_Command):
    """Memory mappings and where each one's bytes come from.

Usage: ckpt maps [ADDRESS]
For each mapping: its range, protection, kind, size and sources, then its path.
Sources: image = stored in this image file; file = not stored, read from the
mapped file; zero = zero pages; parent = stored in the parent image (an
incremental image); absent = not saved (e.g. [vvar]; recreated on restore).
With ADDRESS, shows only the mapping that contains it."""

    def __init__(self):
        super().__init__("ckpt maps", complete=gdb.COMPLETE_EXPRESSION)

    @_command
    def invoke(self, arg, from_tty):
        _, info = _image()
        memory = info.get("memory", [])
        procs = info.get("processes", [])
        if len(procs) > 1:  # a tree image: the process gdb shows
            pid = _process(info, "").get("pid")
            memory = [m for m in memory if m.get("pid", pid) == pid]
        if arg.strip():
            try:
                addr = int(gdb.parse_and_eval(arg).cast(gdb.lookup_type("unsigned long")))
            except gdb.error as e:
                raise _Fail("'%s' is not an address: %s" % (arg.strip(), e))
            memory = [m for m in memory if _int(m["start"]) <= addr < _int(m["end"])]
            if not memory:
                raise _Fail("no mapping contains 0x%x" % addr)
        rows = [("START", "END", "PROT", "KIND", "SIZE", "SOURCE", "PATH")]
        parent_bytes = 0
        for m in memory:
            start, end = _int(m["start"]), _int(m["end"])
            parts = [(m.get(k, 0), name) for k, name in _SOURCES if m.get(k, 0)]
            if len(parts) == 1:
                source = parts[0][1]
            elif parts:
                source = " + ".join("%s %s" % (name, _human(n)) for n, name in parts)
            else:
                source = "-"
            parent_bytes += m.get("parent_bytes", 0)
            rows.append(("0x%x" % start, "0x%x" % end, str(m.get("prot")), str(m.get("kind")),
                         _human(end - start), source, str(m.get("path", ""))))
        _table(rows, right=(4,))
        if parent_bytes:
            _out("Note: gdb reads 'parent' bytes (%s) as zeros; they are in the parent image." % _human(parent_bytes))


class CkptTree(_Command):
    """The processes in the image, as a tree.

Usage: ckpt tree
Lists each checkpointed process with its pid, parent pid, process group,
session, thread count, name and program ('[zombie, exit N]' or '[zombie,
killed by SIGX]' for a zombie);
'*' marks the process gdb shows. Under 'imgtool gdb --pid N' the tree is
that of the whole image file."""

    def __init__(self):
        super().__init__("ckpt tree")

    @_command
    def invoke(self, arg, from_tty):
        if arg.strip():
            raise _Fail("'ckpt tree' takes no arguments")
        _, info = _image()
        whole = os.environ.get("CKPT_TREE_IMAGE")
        if whole:
            # 'imgtool gdb --pid N': gdb shows one process of a tree image;
            # the tree is the whole file's.
            info = _run_imgtool_info(whole)
        procs = list(info.get("processes", []))
        known = {p.get("pid") for p in procs}
        for t in info.get("tree", []):
            if t.get("pid") not in known and t.get("state") == "zombie":
                procs.append({"pid": t.get("pid"), "ppid": t.get("ppid"), "pgid": t.get("pgid"),
                              "sid": t.get("sid"), "comm": t.get("comm", ""), "threads": [],
                              "zombie": ("exit %s" % t["exit_code"]) if "exit_code" in t
                              else "killed by %s" % t.get("term_signal")})
        shown = gdb.selected_inferior().pid
        root = info.get("identity", {}).get("root_pid")
        pids = {p.get("pid") for p in procs}
        children = {}
        for p in procs:
            children.setdefault(p.get("ppid") if p.get("ppid") in pids else None, []).append(p)
        rows = [(" ", "PID", "PPID", "PGID", "SID", "THREADS", "NAME", "PROGRAM")]

        def walk(parent, depth, seen):
            for p in sorted(children.get(parent, []), key=lambda q: q.get("pid", 0)):
                pid = p.get("pid")
                if pid in seen:
                    continue
                seen.add(pid)
                note = []
                if pid == root:
                    note.append("root")
                if p.get("stopped"):
                    note.append("stopped")
                if "zombie" in p:
                    note.append("zombie, %s" % p["zombie"])
                rows.append(("*" if pid == shown else " ", "  " * depth + str(pid), str(p.get("ppid")),
                             str(p.get("pgid")), str(p.get("sid")), str(len(p.get("threads", []))),
                             str(p.get("comm", "")),
                             "%s%s" % (p.get("exe", ""), " [" + ", ".join(note) + "]" if note else "")))
                walk(pid, depth + 1, seen)

        walk(None, 0, set())
        _out("Processes in this image (%d):" % len(procs))
        _table(rows, right=(2, 3, 4, 5))


class CkptChain(_Command):
    """The parent chain of an incremental image.

Usage: ckpt chain
Lists each image of the chain, this one first: its image id, its path and
how many pages it stores itself and how many it takes from its parent.
Under 'imgtool gdb' gdb reads the chain merged into one temporary image;
the chain shown is that of the file given to imgtool gdb."""

    def __init__(self):
        super().__init__("ckpt chain")

    @_command
    def invoke(self, arg, from_tty):
        if arg.strip():
            raise _Fail("'ckpt chain' takes no arguments")
        path, info = _image()
        given = os.environ.get("CKPT_CHAIN_IMAGE")
        if given:
            path, info = given, _run_imgtool_info(given)
        chain = info.get("chain") or []
        if not info.get("parent"):
            _out("%s is a full image (no parent chain)." % path)
            return
        if not chain:
            raise _Fail("the parent chain of %s cannot be followed: %s"
                        % (path, info.get("not_restorable_because", "unknown reason")))
        _out("Chain of %d images (this one first):" % len(chain))
        rows = [("#", "IMAGE ID", "STORED PAGES", "PARENT PAGES", "PATH")]
        for i, link in enumerate(chain):
            rows.append((str(i), str(link.get("image_id")), str(link.get("stored_pages", "?")),
                         str(link.get("parent_pages", "?")), str(link.get("path"))))
        _table(rows, right=(2, 3))


class CkptRefresh(_Command):
    """Re-read the loaded image with imgtool and update $ckpt_image_id.

Usage: ckpt refresh"""

    def __init__(self):
        super().__init__("ckpt refresh")

    @_command
    def invoke(self, arg, from_tty):
        _cache["key"] = _cache["info"] = _cache["error"] = None
        try:
            path, info = _image()
        except _Fail:
            _set_image_id(None)
            raise
        _set_image_id(info)
        _out("ckpt: image %s (%s)" % (info["identity"]["image_id"], path))


def _target_key():
    inf = gdb.selected_inferior()
    return (inf.num, getattr(inf, "connection_num", None), inf.pid)


def _on_event(*unused):
    # A core loaded (or switched) after this script: keep $ckpt_image_id
    # right. gdb 13 has no "core loaded" event; a new thread, a new objfile
    # (the vdso, the libraries) and the next prompt all follow one. Every new
    # core gets a new connection number, so the key below changes.
    try:
        key = _target_key()
        if key == _last_seen_target[0]:
            return
        _last_seen_target[0] = key
        _refresh_quietly()
    except Exception:  # never disturb gdb from an event hook
        pass


def _install():
    CkptPrefix()
    InfoCheckpoint()
    CkptInfo()
    CkptFds()
    CkptSignals()
    CkptMaps()
    CkptTree()
    CkptChain()
    CkptRefresh()
    # Sourcing the script again must not stack up hooks.
    registries = (gdb.events.before_prompt, gdb.events.new_objfile, gdb.events.new_thread)
    old = globals().get("_ckpt_installed_hook")
    for registry in registries:
        if old is not None:
            try:
                registry.disconnect(old)
            except (ValueError, RuntimeError):
                pass
        registry.connect(_on_event)
    globals()["_ckpt_installed_hook"] = _on_event
    _last_seen_target[0] = _target_key()
    _refresh_quietly()


_install()
# The live-session commands (ckpt settle, ckpt attach) and the commands on
# whole images (ckpt diff, ckpt restore-here) live next to this file.
gdb.execute("source " + os.path.join(os.path.dirname(_SCRIPT_PATH), "ckpt_live.py"))
gdb.execute("source " + os.path.join(os.path.dirname(_SCRIPT_PATH), "ckpt_image_ops.py"))
