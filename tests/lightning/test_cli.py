"""`microlend devnode` and `microlend wallet`, as a person would run them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.devnode import REPO_ROOT, DevNode


def microlend(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketplace.cli", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )


def test_wallet_invoice_then_marketplace_pays_it(devnode: DevNode) -> None:
    made = microlend("wallet", "invoice", "20000", "--data-dir", str(devnode.data_dir))
    assert made.returncode == 0, made.stderr
    bolt11 = made.stdout.strip()
    assert bolt11.startswith("lnbcrt200u")
    paid = microlend("wallet", "pay", bolt11, "--node", "marketplace", "--data-dir", str(devnode.data_dir))
    assert paid.returncode == 0, paid.stderr
    assert "paid 20000000 msat" in paid.stdout
    again = microlend("wallet", "pay", bolt11, "--node", "marketplace", "--data-dir", str(devnode.data_dir))
    assert again.returncode != 0 and "AlreadyPaid" in again.stderr


def test_wallet_errors_go_to_stderr_with_a_nonzero_exit(tmp_path: Path) -> None:
    bad = microlend("wallet", "pay", "not-an-invoice", "--data-dir", str(tmp_path))
    assert bad.returncode != 0 and bad.stdout == "" and "not a Lightning invoice" in bad.stderr
    down = microlend("wallet", "invoice", "1000", "--data-dir", str(tmp_path / "none"))
    assert down.returncode != 0 and "cannot reach the Lightning node" in down.stderr
