# ckpt_process.py: gdb commands on one process of the loaded image
# (docs/GDB.md), and their formatting helpers. Loaded by ckpt.py, after it;
# gdb's `source` runs both in the same __main__ namespace, so the helpers of
# ckpt.py (_Command, _command, _Fail, _image, _out, _int, _human, _table) are
# used here as they are. Adds:
#
#   ckpt fds [PID]       file descriptors and SysV IPC objects
#   ckpt signals [PID]   dispositions, blocked and pending signals
#   ckpt maps [PID]      the memory map, with where each range's bytes are

import os
import re

import gdb


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


CkptFds()
CkptSignals()
CkptMaps()
