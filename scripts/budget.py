#!/usr/bin/env python3
"""The size budget of the tree: no source file under a crate's src/ over 600 lines, and no
function there over 80 lines. Tests and test helpers are not counted (unit-test modules,
`#[cfg(test)] mod ...`, and the testkit and bench crates); everything else is, core's
conformance rules included.

Usage: python3 scripts/budget.py [--max-file N] [--max-fn N]
"""
import os
import re
import sys

MAX_FILE = 600
MAX_FN = 80
ROOTS = ["ip-monitor-core", "ip-monitor-diesel", "ip-monitor-lettre", "examples"]


def strip(text):
    """The text with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block_end(code, start):
    """Index just past the brace block that opens at or after `start`."""
    i = code.index("{", start)
    depth = 0
    while i < len(code):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(code)


def test_ranges(code):
    ranges = []
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", code):
        ranges.append((m.start(), block_end(code, m.end() - 1)))
    return ranges


def functions(code):
    for m in re.finditer(r"\bfn\s+(\w+)\s*(<[^{;]*?>)?\s*\(", code):
        # The body is the first `{` after the signature, unless a `;` comes first (a trait
        # method without a body).
        j = m.end()
        depth = 1
        while j < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[j], 0)
            j += 1
        brace, semi = code.find("{", j), code.find(";", j)
        if brace < 0 or (0 <= semi < brace):
            continue
        end = block_end(code, brace)
        yield m.group(1), m.start(), end


def main():
    args = sys.argv[1:]
    max_file = int(args[args.index("--max-file") + 1]) if "--max-file" in args else MAX_FILE
    max_fn = int(args[args.index("--max-fn") + 1]) if "--max-fn" in args else MAX_FN
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    over = []
    for top in ROOTS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            rel = os.path.relpath(dirpath, root)
            parts = rel.split(os.sep)
            if "src" not in parts or "target" in parts:
                continue
            for f in sorted(files):
                if not f.endswith(".rs"):
                    continue
                path = os.path.join(rel, f)
                text = open(os.path.join(root, path), encoding="utf-8").read()
                code = strip(text)
                tests = test_ranges(code)
                in_test = lambda pos: any(a <= pos < b for a, b in tests)
                lines = text.count("\n") - sum(code.count("\n", a, b) for a, b in tests)
                if lines > max_file:
                    over.append(f"{path}: {lines} lines (budget {max_file})")
                for name, start, end in functions(code):
                    if in_test(start):
                        continue
                    n = code.count("\n", start, end) + 1
                    if n > max_fn:
                        line = code.count("\n", 0, start) + 1
                        over.append(f"{path}:{line}: fn {name} is {n} lines (budget {max_fn})")
    for o in over:
        print(o)
    if over:
        print(f"budget: {len(over)} over", file=sys.stderr)
        return 1
    print("budget: every file and function within budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
