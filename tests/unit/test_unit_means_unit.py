"""Test folders mirror the packages, and "unit" means no database, no thread, no
process: a module under tests/unit that imports what opens one, or asks for a fixture
that does, belongs under tests/integration/<package>/. Pure AST: imports nothing it reads.
"""

from __future__ import annotations

import ast
from pathlib import Path

UNIT = Path(__file__).resolve().parent

#: Modules (and their submodules) a unit test may not import, and why.
FORBIDDEN_MODULES = {
    "subprocess": "a process",
    "multiprocessing": "a process",
    "threading": "a thread",
    "concurrent.futures": "a thread or process pool",
    "sqlalchemy.engine": "a database engine",
    "services.db.session": "a database engine (make_engine, make_sessionmaker)",
    "services.db.migrate": "a database (migrations)",
    "services.db.unit_of_work": "a database (the SQL unit of work)",
    "services.bootstrap": "an application over a database",
    "services.api": "an application over a database",
    "services.campaigns.render_pool": "a pool of render processes",
    "fastapi.testclient": "an application in a thread",
    "starlette.testclient": "an application in a thread",
    "tests.kafka_cluster": "a Kafka broker",
    "tests.pg_cluster": "a PostgreSQL server",
}
#: Names a unit test may not import from a module allowed otherwise.
FORBIDDEN_NAMES = {("sqlalchemy", "create_engine"): "a database engine"}
#: Fixtures that give a database, a broker or a process.
FORBIDDEN_FIXTURES = {
    "database_url": "a database",
    "postgres_url": "a PostgreSQL database",
    "postgres_server": "a PostgreSQL server",
    "kafka_bootstrap": "a Kafka broker",
    "kafka_broker": "a Kafka broker",
    "private_kafka_broker": "a Kafka broker",
    "db_url": "a database",  # tests/integration/analytics/conftest.py
    "sessions": "a database",
}


def breaches(path: Path) -> list[str]:
    """What in the module at ``path`` opens a database, a thread or a process."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [_imported(node, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [_imported(node, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            found += [
                f"line {node.lineno}: fixture {a.arg} ({FORBIDDEN_FIXTURES[a.arg]})"
                for a in arguments
                if a.arg in FORBIDDEN_FIXTURES
            ]
    return list(dict.fromkeys(f for f in found if f))  # once per line and name


def _imported(node: ast.stmt, module: str, name: str | None) -> str:
    """The breach of importing ``name`` (None: the module itself) from ``module``, or ""."""
    if why := _forbidden(module):
        return f"line {node.lineno}: imports {module} ({why})"
    whole = f"{module}.{name}"
    if name and (why := FORBIDDEN_NAMES.get((module, name)) or _forbidden(whole)):
        return f"line {node.lineno}: imports {whole} ({why})"
    return ""


def _forbidden(module: str) -> str | None:
    for prefix, why in FORBIDDEN_MODULES.items():
        if module == prefix or module.startswith(prefix + "."):
            return why
    return None


def test_unit_tests_open_no_database_thread_or_process() -> None:
    found = {
        str(path.relative_to(UNIT.parent.parent)): problems
        for path in sorted(UNIT.rglob("*.py"))
        if (problems := breaches(path))
    }
    assert found == {}, "move these to tests/integration/<package>/ (git mv): " + repr(found)


def test_the_check_sees_each_kind_of_breach(tmp_path: Path) -> None:
    module = tmp_path / "test_made_up.py"
    module.write_text(
        "import subprocess\n"
        "from sqlalchemy import create_engine, select\n"
        "from services.db.session import make_sessionmaker\n"
        "from services import bootstrap\n"
        "def test_it(database_url, tmp_path):\n"
        "    import threading\n"
    )
    assert breaches(module) == [
        "line 1: imports subprocess (a process)",
        "line 2: imports sqlalchemy.create_engine (a database engine)",
        "line 3: imports services.db.session (a database engine (make_engine, make_sessionmaker))",
        "line 4: imports services.bootstrap (an application over a database)",
        "line 5: fixture database_url (a database)",
        "line 6: imports threading (a thread)",
    ]
