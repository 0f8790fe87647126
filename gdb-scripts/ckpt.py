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


# ---------------------------------------------------------------------------
# Commands.


class _Command(gdb.Command):
    def __init__(self, name, command_class=gdb.COMMAND_DATA, prefix=False, complete=gdb.COMPLETE_NONE):
        super().__init__(name, command_class, complete, prefix)
        self._name = name

    def _no_arguments(self, arg):
        if arg.strip():
            raise _Fail("'%s' takes no arguments" % self._name)


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
        self._no_arguments(arg)
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
# The commands on one process (ckpt fds, ckpt signals, ckpt maps), the
# live-session commands (ckpt settle, ckpt attach), the commands on trees and
# chains (ckpt tree, ckpt chain) and on whole images (ckpt diff, ckpt
# restore-here) live next to this file.
gdb.execute("source " + os.path.join(os.path.dirname(_SCRIPT_PATH), "ckpt_process.py"))
gdb.execute("source " + os.path.join(os.path.dirname(_SCRIPT_PATH), "ckpt_live.py"))
gdb.execute("source " + os.path.join(os.path.dirname(_SCRIPT_PATH), "ckpt_tree.py"))
gdb.execute("source " + os.path.join(os.path.dirname(_SCRIPT_PATH), "ckpt_image_ops.py"))
