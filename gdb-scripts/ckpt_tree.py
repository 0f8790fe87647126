# ckpt_tree.py: gdb commands on the processes and the parent chain of the
# loaded image (docs/GDB.md). Loaded by ckpt.py, after it; gdb's `source`
# runs both in the same __main__ namespace, so the helpers of ckpt.py
# (_Command, _command, _Fail, _image, _out, _table, _run_imgtool_info) are
# used here as they are. Adds:
#
#   ckpt tree     the processes of a tree image, as a tree
#   ckpt chain    the parent chain of an incremental image

import os

import gdb


def _image_or_given(variable):
    """(path, info) of the loaded image, or of the file that imgtool gdb
    names in the environment `variable` (the whole tree, the chain's last
    link) when it is set."""
    path, info = _image()
    given = os.environ.get(variable)
    return (given, _run_imgtool_info(given)) if given else (path, info)


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
        self._no_arguments(arg)
        # 'imgtool gdb --pid N': gdb shows one process of a tree image;
        # the tree is the whole file's.
        _, info = _image_or_given("CKPT_TREE_IMAGE")
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
        self._no_arguments(arg)
        path, info = _image_or_given("CKPT_CHAIN_IMAGE")
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


CkptTree()
CkptChain()
