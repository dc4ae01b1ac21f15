"""`microlend regtest` from the command line: its own bitcoind and two Core Lightning nodes, the marketplace in
production mode on them; a lender signs up, deposits, and the printed wallet command pays the invoice."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lightning.regtest import free_port
from tests.fixtures.realnode import REPO_ROOT

pytestmark = pytest.mark.realnode
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
_BOLT11 = re.compile(r"lnbcrt[0-9a-z]{100,}")


def _csrf(client: httpx.Client, path: str) -> str:
    found = _CSRF.search(client.get(path).text)
    assert found is not None, path
    return found.group(1)


def test_microlend_regtest_serves_a_production_marketplace_on_a_real_network(tmp_path: Path) -> None:
    if os.environ.get("MICROLEND_REALNODE_MISSING"):
        pytest.skip(os.environ["MICROLEND_REALNODE_MISSING"])  # the fixture plugin already failed a CI run
    port = free_port()
    data_dir = tmp_path / "rt"
    command = [sys.executable, "-m", "marketplace.cli", "regtest", "--data-dir", str(data_dir), "--port", str(port)]
    log_path = tmp_path / "regtest.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        printed = log_path.read_text()
        assert "production mode" in printed
        wallet_rpc = re.search(r"wallet pay BOLT11 --rpc (\S+)", printed)
        assert wallet_rpc is not None, printed
        with httpx.Client(base_url=url, follow_redirects=False) as client:
            signed_up = client.post("/signup", data={
                "csrf_token": _csrf(client, "/signup"), "email": "op@example.org", "password": "a long passphrase 1",
                "role": "lender", "display_name": "Op"})
            assert signed_up.status_code == 303, signed_up.text
            made = client.post("/deposit", data={"csrf_token": _csrf(client, "/deposit"), "amount_sat": "21000"})
            assert made.status_code == 303, made.text
            page = client.get(made.headers["location"]).text
            assert "demo wallet" not in page  # production mode: no demo wallet
            bolt11 = _BOLT11.search(page)
            assert bolt11 is not None
            paid = subprocess.run([sys.executable, "-m", "marketplace.cli", "wallet", "pay", bolt11.group(0),
                                   "--rpc", wallet_rpc.group(1)], cwd=REPO_ROOT, capture_output=True, text=True)
            assert paid.returncode == 0, paid.stdout + paid.stderr
            deadline = time.monotonic() + 30
            while "21,000 sat" not in client.get("/dashboard").text:
                assert time.monotonic() < deadline, "the deposit was not credited"
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    # Ctrl-C stops the network too: no daemon of this data dir is left.
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, str(data_dir))]
    assert left == []


def _cmdline_has(proc: Path, text: str) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
