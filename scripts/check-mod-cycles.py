#!/usr/bin/env python3
"""Reports import cycles between the modules of a crate.

Usage: scripts/check-mod-cycles.py <crate>/src [...]

Every file under src/ (bin/ excluded) is one module (`lib.rs` is the root,
`a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`). Every `crate::...`,
`super::...` and `self::...` path in code (comments and inline
`#[cfg(test)] mod tests { ... }` blocks stripped; `use` groups expanded)
is resolved to the longest module prefix it names, giving an edge from the
file's module to that module. A path that names an item of the crate root
(`crate::Result`) is an edge to the root. Strongly connected components of
more than one module are cycles; the same is done for the graph of
top-level modules (`crate::a::b` counts as `a`). Exits 1 on any cycle.
"""

import re
import sys
from pathlib import Path


def module_of(src: Path, f: Path) -> tuple:
    rel = f.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    code = re.sub(r"//[^\n]*", "", code)
    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', code)
    # Inline modules count as part of the file's module: `#[cfg(test)]`
    # ones are dropped, in others `super::` is the file's own module.
    out, i = [], 0
    for m in re.finditer(r"(#\[cfg\(test\)\]\s*)?\bmod\s+\w+\s*\{", code):
        if m.start() < i:
            continue
        out.append(code[i : m.start()])
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        if not m.group(1):
            out.append(re.sub(r"\bsuper::", "self::", code[m.end() : j - 1]))
        i = j
    out.append(code[i:])
    return "".join(out)


def expand(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = tree.replace(" ", "").replace("\n", "")
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [tree]
    prefix, inner = m.groups()
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    items.append(cur)
    return [p for it in items if it for p in expand(prefix + it)]


def paths(code: str) -> list:
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        found += expand(m.group(1))
    code = re.sub(r"\buse\s+[^;]+;", "", code)
    found += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", code)
    return found


def resolve(path: str, here: tuple, is_mod_rs: bool, modules: set):
    segs = [s for s in re.split(r"::", path) if s]
    segs = [re.sub(r"\s+as\s+\w+$", "", s) for s in segs]
    if not segs or segs[0] not in ("crate", "super", "self"):
        return None
    base = list(here)
    rest = segs
    if rest[0] == "crate":
        base, rest = [], rest[1:]
    while rest and rest[0] in ("super", "self"):
        if rest[0] == "super":
            base = base[:-1]
        rest = rest[1:]
    full = base + [s for s in rest if s not in ("*",)]
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in modules:
            return tuple(full[:n])
    return ()


def sccs(graph: dict) -> list:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(comp)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def name(m: tuple) -> str:
    return "::".join(("crate",) + m)


def check(src: Path) -> int:
    files = [f for f in src.rglob("*.rs") if "bin" not in f.relative_to(src).parts]
    modules = {module_of(src, f) for f in files}
    fine, coarse = {}, {}
    for f in files:
        here = module_of(src, f)
        code = strip(f.read_text())
        for p in paths(code):
            to = resolve(p, here, f.name == "mod.rs", modules)
            if to is None or to == here:
                continue
            fine.setdefault(here, set()).add(to)
            a, b = here[:1], to[:1]
            if a != b:
                coarse.setdefault(a, set()).add(b)
    bad = 0
    for label, g in (("module", fine), ("top-level module", coarse)):
        for comp in sccs(g):
            bad += 1
            print(f"{src}: {label} cycle: " + " <-> ".join(sorted(map(name, comp))))
    edges = sum(len(v) for v in fine.values())
    print(f"{src}: {len(modules)} modules, {edges} module edges, {bad} cycles")
    for a in sorted(coarse):
        print(f"  {name(a)} -> " + ", ".join(sorted(map(name, coarse[a]))))
    return bad


if __name__ == "__main__":
    total = sum(check(Path(a)) for a in sys.argv[1:])
    sys.exit(1 if total else 0)
