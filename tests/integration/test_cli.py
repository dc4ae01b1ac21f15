"""The console script as a person runs it: real subprocesses, exit codes, stderr."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.domain.journal import AccountKind
from tests.ledger_helpers import deposit_entry, make_user


def microlend(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROLEND_")}
    return subprocess.run(
        [sys.executable, "-m", "marketplace.cli", *args],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )


def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = microlend("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "run", "db", "ledger", "operator", "devnode", "wallet"):
        assert command in result.stdout


def test_upgrade_then_verify_then_tamper(tmp_path: Path) -> None:
    refused = microlend("ledger", "verify", cwd=tmp_path)
    assert refused.returncode != 0 and "microlend db upgrade" in refused.stderr

    upgraded = microlend("db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "data" / "microlend.sqlite3").exists()

    database = Database(f"sqlite:///{tmp_path / 'data' / 'microlend.sqlite3'}")

    def seed(conn: Connection) -> None:
        _, accts = make_user(conn)
        ledger.post(conn, [deposit_entry(conn, accts[AccountKind.USER_AVAILABLE], 21_000)])

    database.run(seed)
    ok = microlend("ledger", "verify", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ledger OK: 1 entries, 2 lines")

    with database.transaction() as conn:
        conn.execute(text("UPDATE journal_lines SET amount_msat = 20000 WHERE amount_msat = 21000"))
    database.dispose()
    tampered = microlend("ledger", "verify", cwd=tmp_path)
    assert tampered.returncode == 1
    assert tampered.stdout.startswith("ledger FAILED")


def test_bad_settings_are_reported_on_stderr(tmp_path: Path) -> None:
    result = microlend("db", "upgrade", "--mode", "production", cwd=tmp_path)
    assert result.returncode == 2
    assert "MICROLEND_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("password, message", [("short", "10"), ("long enough password", "")])
def test_operator_create(tmp_path: Path, password: str, message: str) -> None:
    assert microlend("db", "upgrade", cwd=tmp_path).returncode == 0
    result = microlend("operator", "create", "--email", "Op@Example.org", cwd=tmp_path, stdin=password + "\n")
    if message:
        assert result.returncode != 0 and message in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        again = microlend("operator", "create", "--email", "op@example.org", cwd=tmp_path, stdin=password + "\n")
        assert again.returncode != 0 and again.stderr.strip()


def test_loans_age_runs_and_refuses_a_bad_date(tmp_path: Path) -> None:
    assert microlend("db", "upgrade", cwd=tmp_path).returncode == 0
    today = datetime.now(timezone.utc).date()
    aged = microlend("loans", "age", "--as-of", (today - timedelta(days=3)).isoformat(), cwd=tmp_path)
    assert aged.returncode == 0, aged.stderr
    assert aged.stdout.startswith("aged 0 active loan(s)")
    bad = microlend("loans", "age", "--as-of", "31/01/2027", cwd=tmp_path)
    assert bad.returncode == 2 and "as-of" in bad.stderr
    # A day in the future would charge late fees for days that have not happened.
    future = microlend("loans", "age", "--as-of", (today + timedelta(days=1)).isoformat(), cwd=tmp_path)
    assert future.returncode != 0 and "in the future" in future.stderr and not future.stdout
    # Nor a day before the last run.
    earlier = microlend("loans", "age", "--as-of", (today - timedelta(days=4)).isoformat(), cwd=tmp_path)
    assert earlier.returncode != 0 and "last ran for" in earlier.stderr
    assert microlend("loans", "age", cwd=tmp_path).returncode == 0
