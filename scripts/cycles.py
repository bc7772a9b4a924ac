#!/usr/bin/env python3
"""Import cycles between the files of each library crate: file A uses an item through a
module path that is file B, and B (directly or through others) uses A. A module's own
`mod` declarations and the `pub use` re-exports of its children are its interface, not
imports, and are not counted; `use super::...` and `use crate::...` are.

Usage: python3 scripts/cycles.py
"""
import os
import re
import sys

CRATES = {"ip-monitor-core": "crate", "ip-monitor-diesel": "crate", "ip-monitor-lettre": "crate",
          "examples/standalone": "crate"}


def module_files(src):
    """Map module path (tuple) -> file path."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            out[tuple(parts)] = os.path.join(dirpath, f)
    return out


def strip_tests(text):
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def uses(text):
    """The paths named by `use` items (not `pub use`), expanded over braces."""
    text = re.sub(r"//[^\n]*", "", text)
    for m in re.finditer(r"(?m)^\s*(pub(\([^)]*\))?\s+)?use\s+([^;]+);", text):
        if m.group(1) and "pub(crate)" not in m.group(1) and "pub(super)" not in m.group(1):
            continue
        for p in expand(re.sub(r"\s+", "", m.group(3))):
            yield p
    for m in re.finditer(r"\bcrate::((?:\w+::)*\w+)", text):
        yield "crate::" + m.group(1)


def expand(tree):
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0]]
    prefix, inner = tree[:i], tree[i + 1:tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        cur += c
    parts.append(cur)
    return [q for p in parts if p for q in expand(prefix + p)]


def resolve(path, here, mods):
    segs = path.split("::")
    if segs[0] == "crate":
        base = []
    elif segs[0] == "super":
        base = list(here)
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
        segs = ["crate"] + segs
    elif segs[0] == "self":
        base, segs = list(here), ["crate"] + segs[1:]
    else:
        return None
    names = base + segs[1:]
    for n in range(len(names), -1, -1):
        if tuple(names[:n]) in mods:
            return tuple(names[:n])
    return None


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    found = []
    for crate in CRATES:
        src = os.path.join(root, crate, "src")
        mods = module_files(src)
        edges = {m: set() for m in mods}
        for m, f in mods.items():
            text = strip_tests(open(f, encoding="utf-8").read())
            for p in uses(text):
                t = resolve(p, m, mods)
                if t is not None and t != m:
                    edges[m].add(t)
        # Tarjan's strongly connected components.
        index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in edges[v]:
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    sccs.append(comp)

        sys.setrecursionlimit(10000)
        for v in mods:
            if v not in index:
                visit(v)
        for comp in sccs:
            found.append(crate + ": " + " <-> ".join(sorted("::".join(c) or "lib" for c in comp)))
    for f in found:
        print(f)
    if found:
        print(f"cycles: {len(found)}", file=sys.stderr)
        return 1
    print("cycles: no import cycle between files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
