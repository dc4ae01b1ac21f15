"""`microlend demo` fills an empty marketplace through the real services and the dev node; the ledger verifies."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyln.client import LightningRpc
from sqlalchemy import func, select

from marketplace.db.engine import Database
from marketplace.db.tables import grade_calibration, loans, notes


def test_demo_on_a_node_that_is_not_there_says_what_to_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROLEND_")}
    env.update({"MICROLEND_DATA_DIR": str(tmp_path / "data"), "MICROLEND_CLN_RPC": str(tmp_path / "nowhere")})
    upgrade = subprocess.run([sys.executable, "-m", "marketplace.cli", "db", "upgrade"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    demo = subprocess.run([sys.executable, "-m", "marketplace.cli", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 1
    assert f"cannot be reached at {tmp_path / 'nowhere'}" in demo.stderr and "microlend run" in demo.stderr


def test_demo_makes_loans_in_every_state_and_the_ledger_verifies(tmp_path: Path) -> None:
    """`microlend demo` by itself, as the README's table offers: on the embedded default it starts the dev node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROLEND_")}
    env.update({"MICROLEND_DATA_DIR": str(tmp_path / "data")})

    def microlend(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "marketplace.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    assert microlend("db", "upgrade").returncode == 0
    demo = microlend("demo")
    assert demo.returncode == 0, demo.stderr
    assert "password for all: demo-password" in demo.stdout and "lender-1@demo.microlend.test" in demo.stdout
    assert "dev node: started" in demo.stdout
    socket = tmp_path / "data" / "devnode" / "marketplace" / "lightning-rpc"
    with pytest.raises((OSError, ValueError)):
        LightningRpc(str(socket)).getinfo()  # stopped again when the demo ended
    again = microlend("demo")
    assert again.returncode == 0 and "nothing added" in again.stdout

    database = Database(f"sqlite:///{tmp_path / 'data' / 'microlend.sqlite3'}")
    states = set(database.read(lambda c: c.execute(select(loans.c.status, loans.c.delinquency)).all()))
    grades = set(database.read(lambda c: c.execute(select(loans.c.origination_grade)
                                                   .where(loans.c.status == "funding")).scalars().all()))
    # Auto-invest lenders: notes spread over several loans, one note per loan.
    # Issue 19: five defaulted B loans move grade B by credibility (x1.65), not x98; no open request's PD is
    # one that a few loans' outcomes made (all stay within the band their terms give, under 20 %).
    factors = database.read(lambda c: c.execute(select(grade_calibration.c.factor_ppm)).scalars().all())
    open_pds = database.read(lambda c: c.execute(select(loans.c.pd_ppm).where(loans.c.status == "funding"))
                             .scalars().all())
    spread = database.read(lambda c: c.execute(
        select(notes.c.lender_id, func.count(func.distinct(notes.c.loan_id)), func.count())
        .where(notes.c.autoinvest_order_id.is_not(None)).group_by(notes.c.lender_id)).all())
    database.dispose()
    assert "auto-invest bought" in demo.stdout
    assert factors and max(factors) < 2_000_000, factors
    assert open_pds and max(open_pds) < 200_000, open_pds
    assert len(grades) >= 4, grades  # open requests of (nearly) every grade, not all C
    assert len(spread) >= 3 and all(loans_held == count >= 5 for _, loans_held, count in spread), spread
    for expected in [("funding", "current"), ("active", "current"), ("active", "late"), ("active", "defaulted"),
                     ("written_off", "defaulted"), ("repaid", "current"), ("expired", "current")]:
        assert expected in states, (expected, states)

    verified = microlend("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ledger OK")
