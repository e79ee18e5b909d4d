#!/usr/bin/env python3
"""Fails when the files of a crate import each other in a circle.

For each crate (`compiler/`, `lsp/`, `runtime/`) this reads every `src/**/*.rs`, finds the paths
that name another module of the same crate — `use crate::…`, `use super::…`, `use self::…`, a `use`
of a child module declared in the file, and `crate::…`/`super::…` written inline — and resolves
each to the file that defines the deepest module it names. That gives a file-level import graph;
every strongly connected component with more than one file is a circle, reported with one cycle
through it, and the script exits 1.

A module is made of its submodules, so a module's own uses of its descendants (`child::f()`,
its face `pub use child::Item`) are not edges; paths through such a re-export resolve to the
file that defines the item. Comments and literals are skipped; `#[cfg(test)]` modules count like
other code (a test module's `use super::*` names its own file, which is not an edge).

Some circles are the shape of the problem: the evaluator's nodes and built-in functions recurse
into each other. Those edges are in ALLOWED below, each with its reason; nothing else is.

Python 3, standard library only.  Usage: .ci/import-cycles.py [--verbose] [repository root]
(--verbose prints every edge)
"""

import os
import re
import sys

CRATES = ["compiler", "lsp", "runtime"]

# Edges (importing file → imported file, relative to the repository root) that may close a circle.
ALLOWED = {
    # True mutual recursion in the evaluator: the expression nodes (`eval/nodes.rs`) call the
    # built-in functions (`eval/functions.rs`), and the functions evaluate their arguments, which
    # are nodes, through `nodes.rs`'s `Node` and `Env`. Splitting them would only hide the
    # recursion behind a callback.
    ("compiler/src/eval/functions.rs", "compiler/src/eval/nodes.rs"),
}

TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<line_comment>//[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<raw_string>b?r(?P<hashes>\#*)")
    | (?P<string>b?"(?:\\.|[^"\\])*")
    | (?P<char>b?'(?:\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])')
    | (?P<lifetime>'[A-Za-z_][A-Za-z0-9_]*)
    | (?P<ident>r\#[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*)
    | (?P<path_sep>::)
    | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokens(text):
    """Identifiers, `::` and single punctuation characters; comments and literals dropped."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        m = TOKEN.match(text, i)
        if m is None:  # pragma: no cover - `punct` matches any character
            break
        kind = m.lastgroup
        if kind == "block_comment":
            depth, j = 1, m.end()
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
            continue
        if kind == "raw_string" or kind == "hashes":
            end = '"' + m.group("hashes")
            j = text.find(end, m.end())
            i = n if j < 0 else j + len(end)
            continue
        i = m.end()
        if kind in ("ws", "line_comment", "string", "char", "lifetime"):
            continue
        out.append(m.group())
    return out


def file_module(src, path):
    """The module path of a file under `src/`: `a/b.rs` → [a, b], `a/mod.rs` → [a], `lib.rs` → []."""
    rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if rel[-1] == "mod" or rel == ["lib"] or rel == ["main"]:
        rel = rel[:-1]
    return tuple(rel)


def use_paths(toks, i):
    """Expands the use tree starting at toks[i] (just after `use`).

    Returns ([(path, name it is bound to)], index after the `;`).
    """

    def tree(i, prefix):
        items = []
        path = list(prefix)
        alias = None
        while i < len(toks):
            t = toks[i]
            if t == "{":
                i += 1
                while toks[i] != "}":
                    sub, i = tree(i, path)
                    items.extend(sub)
                    if toks[i] == ",":
                        i += 1
                return items, i + 1
            if t == "::":
                i += 1
            elif t == "*":
                items.append((path, "*"))
                return items, i + 1
            elif t == "as":
                alias = toks[i + 1]
                i += 2
            elif t in (",", "}", ";"):
                break
            else:
                path.append(t)
                i += 1
        if path != list(prefix) or not items:
            if path and path[-1] == "self":
                path = path[:-1]
            items.append((path, alias or (path[-1] if path else None)))
        return items, i

    items, i = tree(i, [])
    while i < len(toks) and toks[i] != ";":
        i += 1
    return items, i + 1


def absolute(path, here, children):
    """The absolute path (from the crate root) a path in module `here` names, or None when it
    leaves the crate (another crate, the standard library, or a name in scope)."""
    base, segs = tuple(here), list(path)
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] in ("super", "self"):
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    elif segs[0] not in children:
        return None
    return base + tuple(segs)


def resolve(full, modules, reexports, hops=0):
    """The file module that defines what an absolute path names: the deepest module file on the
    path, followed through that module's re-exports (`pub use child::Item`) when the next segment
    is one of them."""
    for k in range(len(full), -1, -1):
        if full[:k] in modules:
            module = full[:k]
            break
    if k < len(full) and hops < 16:
        target = reexports.get(module, {}).get(full[k])
        if target is not None:
            return resolve(target + full[k + 1 :], modules, reexports, hops + 1)
    return module


def crate_graph(root, crate):
    src = os.path.join(root, crate, "src")
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                if os.path.relpath(path, src) == "main.rs":
                    continue  # the binary's own root; it reaches the library by the crate's name
                files[file_module(src, path)] = path
    # First pass: every path each file names, and each module's re-exports.
    named = {}  # file module -> [absolute path]
    reexports = {}  # file module -> {name: absolute path}
    for module, path in files.items():
        with open(path, encoding="utf-8") as f:
            toks = tokens(f.read())
        children = {
            toks[k + 1] for k in range(len(toks) - 2) if toks[k] == "mod" and toks[k + 2] == ";"
        }
        paths = named.setdefault(module, [])
        # Inline modules (`mod tests { … }`) shift what `super` and `self` mean inside them.
        stack = []  # (brace depth at which the inline module closes, its name)
        depth = 0
        i = 0
        while i < len(toks):
            t = toks[i]
            here = module + tuple(name for _, name in stack)
            if t == "{":
                depth += 1
                i += 1
            elif t == "}":
                depth -= 1
                if stack and stack[-1][0] == depth:
                    stack.pop()
                i += 1
            elif t == "mod" and i + 2 < len(toks) and toks[i + 2] == "{":
                stack.append((depth, toks[i + 1]))
                depth += 1
                i += 3
            elif t == "use":
                public = i > 0 and (toks[i - 1] == "pub" or (toks[i - 1] == ")" and "pub" in toks[i - 6 : i]))
                items, i = use_paths(toks, i + 1)
                for p, alias in items:
                    full = absolute(p, here, children if not stack else set())
                    if full is None:
                        continue
                    # A module's face (`pub use child::Item` in its parent) is not a use of the
                    # child's code: paths through it resolve to the child instead.
                    if public and not stack and full[: len(module)] == module and full != module:
                        if alias != "*":
                            reexports.setdefault(module, {})[alias] = full
                        continue
                    paths.append(full)
            elif t in ("crate", "super") and (i == 0 or toks[i - 1] != "::"):
                path, i = [t], i + 1
                while i + 1 < len(toks) and toks[i] == "::":
                    path.append(toks[i + 1])
                    i += 2
                full = absolute(path, here, set())
                if full is not None:
                    paths.append(full)
            else:
                i += 1
    # Second pass: resolve each path to the file that defines it.
    graph = {os.path.relpath(p, root): set() for p in files.values()}
    for module, paths in named.items():
        me = os.path.relpath(files[module], root)
        for full in paths:
            target = resolve(full, files, reexports)
            # A module is made of its submodules: its uses of them (`child::f()`, its face
            # `pub use child::Item`) are the module tree, not an import that can close a circle.
            if target[: len(module)] == module:
                continue
            graph[me].add(os.path.relpath(files[target], root))
    return graph


def strongly_connected(graph):
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative Tarjan: the graphs are small, but recursion limits are not worth the worry.
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def a_cycle(graph, comp):
    """One shortest cycle through the first file of a component, as a list of files."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main():
    verbose = "--verbose" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--verbose"]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    failed = False
    for crate in CRATES:
        graph = crate_graph(root, crate)
        if verbose:
            for a in sorted(graph):
                for b in sorted(graph[a]):
                    print(f"{a} -> {b}")
        for a, b in ALLOWED:
            if a in graph and b not in graph[a]:
                print(f"import-cycles: allowed edge {a} -> {b} no longer exists; remove it")
                failed = True
            graph.get(a, set()).discard(b)
        for comp in strongly_connected(graph):
            if len(comp) > 1:
                failed = True
                print(f"import cycle in {crate}/: " + " -> ".join(a_cycle(graph, comp)))
                if len(comp) > 2:
                    print("  (files in the circle: " + ", ".join(comp) + ")")
    if failed:
        return 1
    print("import-cycles: no import circles between files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
