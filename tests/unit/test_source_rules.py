"""Rules read from the product's source (pure AST, like test_architecture.py): campaign
statuses are the domain's enum, and the wiring of routers is in plain sight."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.unit.import_graph import Module, scan
from tests.unit.test_architecture import _ratchet, _under


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return scan()


def hidden_wiring(modules: dict[str, Module]) -> list[str]:
    """Imports a reader does not see at the top of a module: ``__import__`` or
    ``import_module`` at run time, and a module-level import after code (what
    ``# noqa: E402`` hides, as the router once imported at the end of its module)."""
    found = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and _called(node) in {"__import__", "import_module"}:
                found.append(f"{module.name}:{node.lineno} {_called(node)}")
        code = [n for n in module.tree.body if not _is_header(n)]
        first = next((n.lineno for n in code if not isinstance(n, ast.Import | ast.ImportFrom)), 0)
        found += [
            f"{module.name}:{n.lineno} import after code"
            for n in code
            if isinstance(n, ast.Import | ast.ImportFrom) and first and n.lineno > first
        ]
    return found


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _is_header(node: ast.stmt) -> bool:
    """A docstring, or an ``if TYPE_CHECKING:`` / ``try:`` block of imports only."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True
    if isinstance(node, ast.If | ast.Try):
        return all(isinstance(n, ast.Import | ast.ImportFrom) for n in node.body)
    return False


def test_router_wiring_is_in_plain_sight(modules: dict[str, Module]) -> None:
    """api.py lists its routers; no module imports at its end or by name at run time."""
    assert hidden_wiring(modules) == []


def test_the_wiring_check_sees_a_late_import_and_an_import_by_name(tmp_path: Path) -> None:
    files = {
        "services/__init__.py": "",
        "services/api.py": 'import os\n\nrouters = __import__("services.routes")\n',
        "services/routes.py": '"""Routes."""\nimport os\n\nrouter = 1\nfrom services import api  # noqa: E402\n',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert sorted(hidden_wiring(scan(tmp_path))) == [
        "services.api:3 __import__",
        "services.routes:5 import after code",
    ]


# --- campaign statuses are the domain's enum -----------------------------------------------


#: Status words outside the domain that are not statuses, and why (a ratchet, as above).
def routers_without_strict_json(modules: dict[str, Module]) -> list[str]:
    """``APIRouter(...)`` calls without ``route_class=JSONBodyRoute``: their routes would
    parse NaN and Infinity in a JSON body (services/json_bodies.py)."""
    return [
        f"{module.name}:{node.lineno}"
        for module in modules.values()
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Call)
        and _called(node) == "APIRouter"
        and not any(
            k.arg == "route_class" and getattr(k.value, "id", None) == "JSONBodyRoute"
            for k in node.keywords
        )
    ]


def test_every_router_refuses_nan_and_infinity_in_json_bodies(
    modules: dict[str, Module],
) -> None:
    assert routers_without_strict_json(modules) == []


def test_the_router_check_sees_a_plain_router(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services/__init__.py").write_text("")
    source = "from fastapi import APIRouter\n\nrouter = APIRouter(tags=['x'])\n"
    (tmp_path / "services/plain_routes.py").write_text(source)
    assert routers_without_strict_json(scan(tmp_path)) == ["services.plain_routes:3"]


ALLOWED_STATUS_WORDS = {
    ("services.campaigns.social", "draft"): "the id of a campaign not yet saved (its check)",
}


def campaign_statuses(modules: dict[str, Module]) -> set[str]:
    """The values of ``services.domain.lifecycle.CampaignStatus``, read from its source."""
    tree = modules["services.domain.lifecycle"].tree
    enum = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "CampaignStatus")
    return {
        a.value.value
        for a in enum.body
        if isinstance(a, ast.Assign) and isinstance(a.value, ast.Constant)
    }


def status_literals(modules: dict[str, Module]) -> dict[tuple[str, str], list[int]]:
    """A campaign status spelt as a string outside the domain, by (module, word). Not
    counted: docstrings, f-string text, dict keys and subscripts (``progress["sent"]``:
    a count's name)."""
    statuses, found = campaign_statuses(modules), defaultdict(list)
    for module in modules.values():
        if _under(module.name, "services.domain"):
            continue
        for parent in ast.walk(module.tree):
            if isinstance(parent, ast.Expr | ast.JoinedStr):
                continue
            skip = [*parent.keys] if isinstance(parent, ast.Dict) else []
            skip += [parent.slice] if isinstance(parent, ast.Subscript) else []
            for node in ast.iter_child_nodes(parent):
                literal = isinstance(node, ast.Constant) and node.value in statuses
                if literal and not any(node is k for k in skip):
                    found[(module.name, node.value)].append(node.lineno)
    return found


def test_campaign_statuses_are_the_domain_enum(modules: dict[str, Module]) -> None:
    """Write ``CampaignStatus.SENT``, not ``"sent"``: a typo or a new status is then
    found by mypy, and grep finds every rule about a status."""
    found = status_literals(modules)
    _ratchet("campaign status as a string literal", found, set(ALLOWED_STATUS_WORDS))


def test_the_status_check_sees_a_literal(tmp_path: Path) -> None:
    files = {
        "services/__init__.py": "",
        "services/domain/__init__.py": "",
        "services/domain/lifecycle.py": "class CampaignStatus:\n    SENT = 'sent'\n",
        "services/dispatch.py": (
            '"""Moves a campaign to "sent"."""\n'
            "done = campaign.status == 'sent'\n"
            "counts = {'sent': 1}\n"
            "n = counts['sent']\n"
            "note = f'sent {n}'\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = status_literals(scan(tmp_path))
    assert dict(found) == {("services.dispatch", "sent"): [2]}
