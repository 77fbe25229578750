#!/usr/bin/env python3
"""Checks that no two modules of hubble-tui import each other, directly or
through others: builds the module graph from `use` declarations and inline
paths (`crate::…`, `super::…`, `self::…`, child modules, names brought in by
`use`), then prints its strongly connected components. Exit status 1 if any
component has more than one module.

A parent's `pub use child::Item` re-export is a facade, not a dependency of
the parent's code, and is left out unless --strict (printer/mod.rs
re-exports its children's items, which import printer's types).

Usage: scripts/module_cycles.py [--strict] [--graph]   (from hubble-tui/)
"""

import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """Removes comments, strings and char literals (keeps line structure)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"[A-Za-z0-9_]", text[i - 1] if i else " "):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'":
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|[^'\\])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel == ["lib"]:
        return ("crate",)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return ("crate",) + tuple(rel)


def split_inline(mod, text):
    """Yields (module, body) for the file and each inline `mod x { … }`."""
    pieces = []
    rest = []
    i = 0
    pat = re.compile(r"\bmod\s+(" + IDENT + r")\s*\{")
    while True:
        m = pat.search(text, i)
        if not m:
            rest.append(text[i:])
            break
        rest.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        pieces.extend(split_inline(mod + (m.group(1),), text[m.end():j - 1]))
        i = j
    return [(mod, "".join(rest))] + pieces


def parse_use_tree(s, prefix, out, public):
    """Flattens a use tree into (path, local name, public)."""
    s = s.strip()
    m = re.match(r"^((?:" + IDENT + r"\s*::\s*)*)\{(.*)\}$", s, re.S)
    if m:
        base = prefix + [p.strip() for p in m.group(1).split("::") if p.strip()]
        depth, cur, parts = 0, "", []
        for ch in m.group(2):
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        parts.append(cur)
        for p in parts:
            if p.strip():
                parse_use_tree(p, base, out, public)
        return
    alias = None
    am = re.match(r"^(.*?)\s+as\s+(" + IDENT + r")$", s, re.S)
    if am:
        s, alias = am.group(1), am.group(2)
    segs = prefix + [p.strip() for p in s.split("::") if p.strip()]
    if segs and segs[-1] == "self":
        segs = segs[:-1]
    if not segs:
        return
    name = alias or segs[-1]
    out.append((segs, None if name in ("*", "_") else name, public))


def main():
    strict = "--strict" in sys.argv
    files = []
    for root, _, names in os.walk(SRC):
        for f in names:
            if f.endswith(".rs") and not (root == os.path.normpath(SRC) and f == "main.rs"):
                files.append(os.path.join(root, f))
    bodies = []
    for p in sorted(files):
        with open(p, encoding="utf-8") as fh:
            bodies.extend(split_inline(module_of(p), strip(fh.read())))
    modules = {m for m, _ in bodies}
    for m in list(modules):
        for k in range(1, len(m)):
            modules.add(m[:k])

    def children(m):
        return {x[-1] for x in modules if len(x) == len(m) + 1 and x[:-1] == m}

    def resolve(m, segs, aliases):
        """The module a path names (longest known prefix), or None."""
        head, rest = segs[0], segs[1:]
        if head == "crate":
            base = ("crate",)
        elif head == "self":
            base = m
        elif head == "super":
            base = m[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif head in children(m):
            base, rest = m + (head,), rest
        elif head in aliases:
            base = aliases[head]
        else:
            return None
        target = base
        for s in rest:
            if target + (s,) in modules:
                target = target + (s,)
            else:
                break
        return target

    edges = {m: set() for m in modules}
    use_re = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
    for m, body in bodies:
        uses = []
        for um in use_re.finditer(body):
            parse_use_tree(um.group(2), [], uses, bool(um.group(1)))
        aliases = {}
        for segs, name, public in uses:
            t = resolve(m, segs, {})
            if t is None:
                continue
            if name:
                # A name for a module aliases it; for an item, its module.
                aliases[name] = t
            facade = public and len(t) == len(m) + 1 and t[:-1] == m
            if t != m and (strict or not facade):
                edges[m].add(t)
        code = use_re.sub(" ", body)
        for pm in re.finditer(r"(?<![A-Za-z0-9_:])(" + IDENT + r"(?:\s*::\s*" + IDENT + r")+)", code):
            segs = [s.strip() for s in pm.group(1).split("::")]
            t = resolve(m, segs, aliases)
            if t is not None and t != m:
                edges[m].add(t)

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
            sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m)
    if "--graph" in sys.argv:
        for v in sorted(modules):
            if edges[v]:
                print(f"{name(v)} -> {', '.join(sorted(name(w) for w in edges[v]))}")
    cycles = [c for c in sccs if len(c) > 1]
    for c in cycles:
        print("cycle:", " <-> ".join(sorted(name(m) for m in c)))
    print(f"{len(modules)} modules, {sum(len(e) for e in edges.values())} edges, "
          f"{len(cycles)} cycle(s)")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
