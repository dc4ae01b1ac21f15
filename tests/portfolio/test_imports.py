"""portfolio/ is plain functions on arrays: it imports no web, database, Lightning or marketplace code."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import portfolio

FORBIDDEN = ("starlette", "sqlalchemy", "pyln", "lightning", "marketplace", "alembic", "psycopg", "jinja2")
PACKAGE = Path(portfolio.__file__).parent


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_module_in_portfolio_names_a_forbidden_package() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 5  # __init__, errors, pd, risk, allocation, returns
    for module in modules:
        bad = _imported_roots(module) & set(FORBIDDEN)
        assert not bad, f"{module.name} imports {sorted(bad)}"


def test_importing_every_module_loads_none_of_them() -> None:
    names = [f"portfolio.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in names)
        + f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
