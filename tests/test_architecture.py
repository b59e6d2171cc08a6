"""Keeps the directions of dependency honest by reading every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cohorthub"

#: Domain packages from the bottom up; a package may import only packages at its level or below.
LAYERS: list[set[str]] = [
    {"workspaces", "partners", "currents", "accounts"},
    {"identity"},
    {"cohorts", "apps"},
    {"segments"},
    {"messaging"},
]
DOMAINS = set().union(*LAYERS)
EDGES = {"store", "api", "cli", "bootstrap", "web"}
FOREIGN_IO = {
    "starlette",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "httpx",
    "httpcore",
    "uvicorn",
    "typer",
    "rich",
    "anyio",
}
SHARED = {"errors", "config", "clock", "keys", "text", "ids", "urls"}
#: Adapters that live beside their concept but are its I/O edge, each behind a port of that concept,
#: with what they may import besides (`cohorthub.outbound`: how an outbound HTTP answer is read).
EDGE_MODULES = {
    "currents/transport.py": {"httpx", "cohorthub.outbound"},
    "messaging/channels/webhook.py": {"httpx", "httpcore", "cohorthub.outbound"},
}


def _level(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _domain_violations(package: str) -> list[str]:
    problems = []
    for path in _modules(package):
        for name in _imports(path):
            top, _, rest = name.partition(".")
            allowed = EDGE_MODULES.get(str(path.relative_to(SRC)), set())
            if top in allowed or name in allowed:
                continue
            if top in FOREIGN_IO or name == "os":
                problems.append(f"{path.relative_to(SRC)} imports {name} (I/O belongs at the edges)")
            if top != "cohorthub" or not rest:
                continue
            target = rest.split(".")[0]
            if target in EDGES:
                problems.append(f"{path.relative_to(SRC)} imports {name} (an edge)")
            elif target in DOMAINS and target != package:
                if package == "currents" or _level(target) > _level(package):
                    problems.append(f"{path.relative_to(SRC)} imports {name} (a higher or unrelated domain)")
            elif target not in DOMAINS | SHARED | {package}:
                problems.append(f"{path.relative_to(SRC)} imports {name}")
    return problems


@pytest.mark.parametrize("package", sorted(p for p in DOMAINS if (SRC / p).is_dir()))
def test_domain_packages_import_no_io_and_no_higher_domain(package: str) -> None:
    assert _domain_violations(package) == []


#: What the partner client may import of the product besides itself: how an HTTP answer is read.
CLIENT_SHARED = {"cohorthub.outbound"}


def test_partner_client_depends_on_nothing_server_side() -> None:
    if not (SRC / "partner_client").is_dir():
        pytest.skip("no partner_client package yet")
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules("partner_client")
        for name in _imports(path)
        if name.startswith("cohorthub")
        and not name.startswith("cohorthub.partner_client")
        and name not in CLIENT_SHARED
    ]
    assert offenders == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from cohorthub.store.tables import users\nimport sqlalchemy\n")
    assert {"cohorthub.store.tables", "sqlalchemy"} <= _imports(module)
