#!/usr/bin/env python3
"""Checks the two layout rules cargo cannot: no import loop between the files of a crate, and no
source file over 600 lines (test modules and tests/ aside). Exit status 1 names what breaks a rule.

An edge a.rs -> b.rs exists when a.rs names an item of b.rs's module through `crate::…`,
`super::…` or `self::…` paths (in `use` lines or inline). A parent's `mod child;` declaration is
not an import, and neither are a child's `use super::*` inside `#[cfg(test)] mod tests`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["daemon/src", "cron/src", "protocol/src", "py-client/src"]
MAX_LINES = 600

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_path(src: Path, file: Path) -> tuple[str, ...]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod … { … }` blocks (brace-matched) so test imports don't count."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def code_lines(text: str) -> int:
    return sum(1 for line in strip_tests(text).splitlines() if line.strip())


def resolve(modules: dict[tuple[str, ...], Path], base: tuple[str, ...], segs: list[str]) -> Path | None:
    """The file holding the longest module prefix of base+segs."""
    full = base + tuple(segs)
    for n in range(len(full), 0, -1):
        if full[:n] in modules:
            return modules[full[:n]]
    return None


def check_crate(src: Path) -> list[str]:
    files = sorted(p for p in src.rglob("*.rs"))
    modules = {module_path(src, f): f for f in files}
    if src.name == "src" and () not in modules:
        return []
    problems: list[str] = []
    edges: dict[Path, set[Path]] = {f: set() for f in files}
    for f in files:
        text = f.read_text(encoding="utf-8")
        n = code_lines(text)
        if n > MAX_LINES and "tests" not in f.parts and f.name != "tests.rs":
            problems.append(f"{f.relative_to(ROOT)}: {n} lines of code (the rule is at most {MAX_LINES})")
        me = module_path(src, f)
        body = re.sub(r"//[^\n]*", "", strip_tests(text))
        found: list[tuple[str, list[str]]] = []
        for g in USE_GROUP_RE.finditer(body):
            prefix = [s for s in g.group(2).split("::") if s]
            for item in re.split(r"[,\s]+", g.group(3)):
                first = item.split("::")[0].strip("{} ")
                if first and first not in ("self",):
                    found.append((g.group(1), prefix + [s for s in item.split("::") if s and s not in "{}"]))
                elif first == "self":
                    found.append((g.group(1), prefix))
        for m in PATH_RE.finditer(body):
            found.append((m.group(1), [s for s in m.group(2).split("::") if s]))
        for kind, segs in found:
            if kind == "crate":
                base: tuple[str, ...] = ()
            elif kind == "self":
                base = me
            else:  # super: the parent of this file's module
                base = me[:-1]
            target = resolve(modules, base, segs)
            if target and target != f:
                # a child naming its own ancestor's module file only for re-exported items is
                # still an edge; a parent's `mod` line is not (it is not a path).
                edges[f].add(target)
    # cycles: Tarjan's strongly connected components
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on: set[Path] = set()
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: Path) -> None:
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
                names = ", ".join(sorted(str(c.relative_to(ROOT)) for c in comp))
                problems.append(f"import loop between: {names}")

    for v in files:
        if v not in index:
            visit(v)
    return problems


def main() -> int:
    problems: list[str] = []
    for crate in CRATES:
        src = ROOT / crate
        if src.is_dir():
            problems += check_crate(src)
    for p in problems:
        print(f"check-structure: {p}")
    if not problems:
        print("check-structure: no import loops, no file over", MAX_LINES, "lines")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
