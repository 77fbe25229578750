#!/usr/bin/env python3
"""Fails when the modules of a workspace crate import each other in a cycle.

For every crate's `src/` (library modules; `main.rs`, `bin/` and test-only
code are left out), each module file is a node and every path it names
(`use crate::a::b`, `super::c`, `crate::d::E` in code) is an edge to the
module that path lands in; a name the crate root re-exports (`pub use
a::E;`) lands in the module it comes from. A strongly connected component
of more than one module is a cycle and is printed with the lines that make
it. Test modules (`tests.rs`, `#[cfg(test)] mod ...`) may import anything.

Usage: scripts/check-module-cycles.py [CRATE_DIR ...] (default: every
workspace member).
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
MODS = {}


def members():
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r"members\s*=\s*\[(.*?)\]", text, re.S)
    return [ROOT / x for x in re.findall(r'"([^"]+)"', m.group(1))]


def module_files(src):
    mods = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        parts = list(rel.parts)
        if parts[0] in ("bin",) or rel.name in ("main.rs", "tests.rs", "build.rs"):
            continue
        if "tests" in parts[:-1]:
            continue
        if rel.name == "lib.rs" and len(parts) == 1:
            mods[()] = f
            continue
        parts[-1] = parts[-1][:-3]
        if parts[-1] == "mod":
            parts.pop()
        mods[tuple(parts)] = f
    return mods


def strip_tests(text):
    # Drop `#[cfg(test)]` items: a `mod x;` line or a `mod x { ... }` block.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = m.end()
        k = text.find("{", j)
        semi = text.find(";", j)
        if semi != -1 and (k == -1 or semi < k):
            i = semi + 1
            continue
        depth, p = 0, k
        while p < len(text):
            if text[p] == "{":
                depth += 1
            elif text[p] == "}":
                depth -= 1
                if depth == 0:
                    break
            p += 1
        i = p + 1
    out.append(text[i:])
    return "".join(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand_paths(text):
    """Every `crate::`/`super::`/`self::` path, with `{a, b::c}` groups expanded."""
    paths = []
    for m in re.finditer(r"\b(crate|super|self)((?:\s*::\s*(?:" + IDENT + r"|\{))+)", text):
        head = m.group(1)
        tail = m.group(2)
        segs = [s for s in re.split(r"\s*::\s*", tail) if s]
        if segs and segs[-1] == "{":
            # Group: take the first path segment of each element.
            start = m.end()
            depth, p, buf = 1, start, ""
            while p < len(text) and depth:
                c = text[p]
                depth += c == "{"
                depth -= c == "}"
                if depth:
                    buf += c
                p += 1
            for item in split_top(buf):
                parts = re.split(r"\s*::\s*", item.strip())
                if parts[0] == "self":
                    paths.append([head] + segs[:-1])
                elif re.match(IDENT, parts[0]):
                    paths.append([head] + segs[:-1] + parts[:2])
        else:
            paths.append([head] + segs)
    return paths


def split_top(s):
    items, depth, cur = [], 0, ""
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += c
    items.append(cur)
    return [i for i in items if i.strip()]


def reexport_paths(text):
    """`pub use` / `pub(crate) use` items of a module: name -> path segments."""
    names = {}
    for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
        body = m.group(1)
        g = re.match(r"(.*?)::\{(.*)\}\s*$", body, re.S)
        items = []
        if g:
            base = re.split(r"\s*::\s*", g.group(1).strip())
            for item in split_top(g.group(2)):
                item = item.strip()
                path = re.split(r"\s+as\s+", item)[0].split("::")
                name = re.split(r"\s+as\s+", item)[-1].split("::")[-1]
                items.append((name, base + path))
        else:
            path = re.split(r"\s+as\s+", body.strip())[0].split("::")
            name = re.split(r"\s+as\s+", body.strip())[-1].split("::")[-1]
            items.append((name, [x.strip() for x in path]))
        for name, path in items:
            if name not in ("*", "self"):
                names[name] = [x.strip() for x in path]
    return names


def longest_module(path, mods):
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def absolute(me, path):
    head, segs = path[0], list(path[1:])
    if head == "crate":
        base = []
    elif head == "self":
        base = list(me)
    elif head == "super":
        base = list(me)[:-1]
        while segs and segs[0] == "super":
            segs = segs[1:]
            base = base[:-1]
    else:  # a path relative to `me` (a child module, or a re-export's source)
        base = list(me)
        child = longest_module(base + [head], MODS)
        if not child or len(child) <= len(base):
            base = []
        segs = [head] + segs
    return base + segs


def resolve(me, path, mods, exports, depth=0):
    full = absolute(me, path)
    target = longest_module(full, mods) or (() if () in mods else None)
    if target is None:
        return None
    rest = full[len(target):]
    if rest and depth < 8:
        src = exports.get(target, {}).get(rest[0])
        if src:
            via = resolve(target, src if src[0] in ("crate", "super", "self") else src, mods, exports, depth + 1)
            if via is not None:
                return via
    return target


def sccs(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
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
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def check(crate):
    src = crate / "src"
    if not src.is_dir():
        return []
    global MODS
    mods = MODS = module_files(src)
    texts = {m: strip_tests(strip_comments(f.read_text())) for m, f in mods.items()}
    exports = {m: reexport_paths(t) for m, t in texts.items()}
    graph, why = {}, {}
    for me, f in mods.items():
        if me == ():
            continue  # the root only declares and re-exports
        # A `pub use child::Item;` re-export is a facade, not a use by this
        # module's code: paths through it resolve to where the item lives.
        text = re.sub(r"pub(?:\([^)]*\))?\s+use\s+[^;]+;", "", texts[me])
        graph.setdefault(me, set())
        for p in expand_paths(text):
            t = resolve(me, p, mods, exports)
            if t is None or t == me or t == ():
                continue
            graph[me].add(t)
            why.setdefault((me, t), "::".join(p))
        # Child modules named without `self::` (`net::spawn`, `use net::X`).
        for child in (m for m in mods if len(m) == len(me) + 1 and m[:-1] == me):
            hit = re.search(r"(?<![:\w])" + re.escape(child[-1]) + r"\s*::", text)
            if hit:
                graph[me].add(child)
                why.setdefault((me, child), child[-1] + "::")
    problems = []
    for comp in sccs(graph):
        if len(comp) > 1:
            names = sorted("::".join(c) for c in comp)
            lines = [
                f"    {'::'.join(a)} -> {'::'.join(b)} ({why[(a, b)]})"
                for a in comp for b in graph[a] if b in comp
            ]
            problems.append(f"{crate.name}: import cycle between {', '.join(names)}\n" + "\n".join(sorted(lines)))
    return problems


def main():
    crates = [Path(a).resolve() for a in sys.argv[1:]] or members()
    problems = [p for c in crates for p in check(c)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-module-cycles: no import cycle in {len(crates)} crates", file=sys.stderr)


if __name__ == "__main__":
    main()
