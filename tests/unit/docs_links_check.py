#!/usr/bin/env python3
"""Checks that the documentation's references resolve (a unit test, ctest
docs_links). Three kinds:
  - every relative markdown link [text](target) in a .md file names a file
    or folder that exists, and its #anchor, if any, a heading there;
  - every path docs/....md named in any source or documentation file
    exists (a code comment citing a moved document fails here);
  - every citation of a section, FILE.md "Title" on one line, names a
    heading of that file (its words in order among the heading's: a
    citation may shorten a title).
Usage: docs_links_check.py SOURCE_DIR. Prints one line per broken reference
and exits 1 if there is any."""
import os
import re
import sys

TEXT_EXT = ('.md', '.c', '.cc', '.h', '.S', '.py', '.sh', '.txt', '.in')
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')
DOC_PATH = re.compile(r'(?<![\w/.-])((?:[\w.-]+/)*docs/[\w./-]+\.md)')
SECTION = re.compile(r'(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.md),? "([^"\n]+)"')


def source_files(root):
    for d, dirs, files in os.walk(root):
        # Hidden folders (.git) and build trees (any folder holding a
        # CMakeCache.txt) are not the source.
        dirs[:] = sorted(x for x in dirs if not x.startswith('.') and
                         not os.path.exists(os.path.join(d, x, 'CMakeCache.txt')))
        for f in sorted(files):
            if f.endswith(TEXT_EXT) or f == 'CMakeLists.txt':
                yield os.path.join(d, f)


def slug(heading):
    # GitHub's anchor of a heading: lower case, punctuation but '-' and '_'
    # dropped, spaces to '-'.
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


def headings(path, cache={}):
    if path not in cache:
        hs = []
        in_code = False
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.startswith('```'):
                    in_code = not in_code
                elif not in_code and line.startswith('#'):
                    hs.append(line.lstrip('#').strip())
        cache[path] = hs
    return cache[path]


def words(s):
    return re.findall(r'[a-z0-9]+', s.lower())


def cites(title, heading):
    # The title's words appear in the heading's, in order.
    rest = iter(words(heading))
    return all(w in rest for w in words(title))


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else '.')
    bad = []
    for path in source_files(root):
        if os.path.samefile(path, __file__):
            continue  # its own docstring shows the patterns
        rel = os.path.relpath(path, root)
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = f.read().split('\n')
        in_code = False
        for n, line in enumerate(lines, 1):
            where = '%s:%d' % (rel, n)
            if path.endswith('.md'):
                if line.startswith('```'):
                    in_code = not in_code
                    continue
                if not in_code:
                    for target in LINK.findall(line):
                        if re.match(r'[a-z]+:', target):
                            continue  # http:, mailto:
                        file_part, _, anchor = target.partition('#')
                        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
                        if not os.path.exists(dest):
                            bad.append('%s: link to %s: no such file' % (where, target))
                        elif anchor and dest.endswith('.md') and anchor not in {slug(h) for h in headings(dest)}:
                            bad.append('%s: link to %s: no such heading' % (where, target))
            for p in DOC_PATH.findall(line):
                # Named from the source root, or relative to the citing file.
                if not any(os.path.exists(os.path.join(b, p)) for b in (root, os.path.dirname(path))):
                    bad.append('%s: %s: no such file' % (where, p))
            for p, title in SECTION.findall(line):
                cands = [os.path.join(root, p), os.path.join(os.path.dirname(path), p),
                         os.path.join(root, 'docs', p)]
                dest = next((c for c in cands if os.path.exists(c)), None)
                if dest is None:
                    bad.append('%s: %s: no such file' % (where, p))
                elif not any(cites(title, h) for h in headings(dest)):
                    bad.append('%s: %s has no section "%s"' % (where, p, title))
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
