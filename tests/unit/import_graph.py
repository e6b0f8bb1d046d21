"""The product's imports, read from its source with ``ast`` (nothing is imported or run).

:func:`scan` reads every module of ``services``, ``streams`` and ``schemas`` and returns
each import with where it sits (module level, inside a function, under
``if TYPE_CHECKING``), each module's size and each function's size. The rules over this
(layers, rooms, the ratchet) are in tests/unit/test_architecture.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("services", "streams", "schemas")


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    target: str  # the own module imported (``services.bus.outbox``), or the library's name
    line: int
    in_function: bool
    type_only: bool  # under ``if TYPE_CHECKING:``

    @property
    def own(self) -> bool:
        return self.target.split(".")[0] in PRODUCT

    def __str__(self) -> str:
        where = " (in a function)" if self.in_function else ""
        return f"{self.importer}:{self.line} imports {self.target}{where}"


@dataclass
class Module:
    name: str
    path: Path
    lines: int
    tree: ast.Module
    imports: list[Import] = field(default_factory=list)

    @cached_property
    def is_router(self) -> bool:
        """Builds a FastAPI ``APIRouter``: an HTTP entry point."""
        return any(
            isinstance(n, ast.Call) and getattr(n.func, "id", None) == "APIRouter"
            for n in ast.walk(self.tree)
        )


def scan(root: Path = ROOT) -> dict[str, Module]:
    """Every product module of the checkout at ``root`` by dotted name, with its imports."""
    modules = {}
    for top in PRODUCT:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            text = path.read_text()
            modules[name] = Module(name, path, len(text.splitlines()), ast.parse(text))
    for module in modules.values():
        module.imports = list(_imports(module, set(modules)))
    return modules


def _imports(module: Module, known: set[str]) -> Iterator[Import]:
    def visit(node: ast.AST, in_function: bool, type_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            typed = type_only or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(module, child, known):
                    yield Import(module.name, target, child.lineno, in_function, type_only)
            elif (dynamic := _dynamic(child)) is not None:
                target = _owner(dynamic, known)
                yield Import(module.name, target, child.lineno, in_function, type_only)
            yield from visit(child, func, typed)

    yield from visit(module.tree, False, False)


def _targets(module: Module, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The modules an import statement loads: ``from a import b`` is ``a.b`` when that is a
    module, else ``a``; library imports are reduced to the library's top name."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.name.split(".")
            if module.path.name != "__init__.py":
                package = package[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    return sorted({_owner(n, known) for n in names})


def _dynamic(node: ast.AST) -> str | None:
    """The module named by ``__import__("a.b", ...)`` or ``import_module("a.b")``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    first = node.args[0]
    if name in {"__import__", "import_module"} and isinstance(first, ast.Constant):
        return str(first.value)
    return None


def _owner(name: str, known: set[str]) -> str:
    if name.split(".")[0] not in PRODUCT:
        return name.split(".")[0]
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def function_sizes(modules: dict[str, Module]) -> Iterator[tuple[int, str]]:
    """(lines, ``module.function``) of every function and method, decorators excluded."""
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                yield node.end_lineno - node.lineno + 1, f"{module.name}.{node.name}"


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one node: the cycles' nests."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while (w := stack.pop()) != v:
                component.add(w)
            found.append(component | {v})

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return [c for c in found if len(c) > 1]


def elementary_cycles(graph: dict[str, set[str]]) -> int:
    """How many simple cycles the graph has (each counted once, from its smallest node)."""
    count = 0

    def walk(start: str, v: str, seen: set[str]) -> None:
        nonlocal count
        for w in graph.get(v, ()):
            if w == start:
                count += 1
            elif w > start and w not in seen:
                walk(start, w, seen | {w})

    for start in sorted(graph):
        walk(start, start, {start})
    return count
