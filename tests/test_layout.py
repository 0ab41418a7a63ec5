"""The package's layout keeps its rules: no import circles, a pure core without I/O, only the CLI prints."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "syncd"

# The pure core: text, plans, payloads and events in, values out. No network, disk, clock or process.
PURE = (
    "syncd.jsonc",
    "syncd.sync.plan",
    "syncd.sync.stale",
    "syncd.sync.render",
    "syncd.sync.outcome",
    "syncd.model",
    "syncd.report",
    "syncd.providers.normalize",
    "syncd.notify.events",
    "syncd.text",
)
IO_MODULES = (
    "httpx", "watchfiles", "asyncio", "subprocess", "socket", "shutil", "tempfile",
    "syncd.sync.store", "syncd.sync.state", "syncd.sync.locks", "syncd.providers.fetch",
)
# What each part may import, bottom first. A part is a subpackage or a module of the top level.
BOTTOM = ("syncd", "syncd.errors", "syncd.paths", "syncd.logs", "syncd.model", "syncd.report",
          "syncd.text", "syncd.localfile")
LAYERS: dict[str, tuple[str, ...]] = {
    "syncd.jsonc": BOTTOM,
    "syncd.notify": BOTTOM,
    "syncd.settings": (*BOTTOM, "syncd.notify"),
    "syncd.providers": (*BOTTOM, "syncd.jsonc", "syncd.settings"),
    "syncd.sync": (*BOTTOM, "syncd.jsonc", "syncd.settings", "syncd.providers"),
    "syncd.engine": (*BOTTOM, "syncd.jsonc", "syncd.settings", "syncd.providers", "syncd.sync",
                     "syncd.notify"),
    "syncd.daemon": (*BOTTOM, "syncd.jsonc", "syncd.settings", "syncd.sync", "syncd.notify"),
    "syncd.service": BOTTOM,
    "syncd.doctor": (*BOTTOM, "syncd.jsonc", "syncd.settings", "syncd.providers", "syncd.sync",
                     "syncd.service"),
}
PRINTING = ("print", "sys.stdout", "sys.stderr", "sys.__stdout__", "sys.__stderr__")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Every module `name` imports, anywhere in its body (deferred imports count, TYPE_CHECKING not)."""
    out: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".")[: -node.level] if not _is_package(name) else name.split(".")
                base = ".".join([*pkg, node.module])
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
    return out


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def graph() -> dict[str, set[str]]:
    trees = modules()
    known = set(trees)
    return {
        name: {m for m in imports_of(name, tree, known) if m in known and m != name}
        for name, tree in trees.items()
    }


def part_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_back_through_others() -> None:
    # a package's __init__ importing its own modules is how a package exports; it is not a circle
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph().items()}
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_parts_import_only_the_parts_below_them() -> None:
    wrong = []
    for module, deps in graph().items():
        part = part_of(module)
        allowed = LAYERS.get(part)
        if allowed is None:  # the CLI (and the package root) may import any part
            continue
        for dep in deps:
            if part_of(dep) != part and part_of(dep) not in allowed:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_parts_form_no_circle() -> None:
    parts: dict[str, set[str]] = {}
    for module, deps in graph().items():
        parts.setdefault(part_of(module), set()).update(
            part_of(d) for d in deps if part_of(d) != part_of(module) and part_of(d) != "syncd"
        )
    assert find_cycle(parts) is None, " -> ".join(find_cycle(parts) or [])


@pytest.mark.parametrize("pure", PURE)
def test_the_pure_core_touches_no_io(pure: str) -> None:
    trees = modules()
    core = {m for m in trees if m == pure or m.startswith(pure + ".")}
    assert core, f"{pure} is not a module of the package"
    # what the core reaches through its own imports counts too
    edges = graph()
    reach, todo = set(core), list(core)
    while todo:
        for dep in edges[todo.pop()]:
            if dep not in reach and dep.startswith("syncd."):
                reach.add(dep)
                todo.append(dep)
    bad = []
    for module in sorted(reach):
        for dep in imports_of(module, trees[module], set(trees)):
            if any(dep == io or dep.startswith(io + ".") for io in IO_MODULES):
                bad.append(f"{module} imports {dep}")
    assert not bad, "\n".join(bad)


def test_only_the_cli_prints() -> None:
    printing = []
    for module, tree in modules().items():
        if part_of(module) == "syncd.cli":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Name, ast.Attribute)) and ast.unparse(node) in PRINTING:
                printing.append(f"{module}:{node.lineno} uses {ast.unparse(node)}")
    assert not printing, "\n".join(printing)


def test_the_rules_see_real_imports() -> None:
    """The checks above would pass on an empty graph; this one proves the graph is read."""
    edges = graph()
    assert "syncd.sync.plan" in edges["syncd.engine"] or any(
        d.startswith("syncd.sync.") for d in edges["syncd.engine"]
    )
    assert "syncd.jsonc.parser" in edges["syncd.jsonc.edit"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert part_of("syncd.sync.store") == "syncd.sync" and part_of("syncd.errors") == "syncd.errors"
