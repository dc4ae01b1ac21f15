"""The simulated network: hosted nodes, their channels, and the expiry clock."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lightning.devnode import issuer
from lightning.devnode.store import Store

DEFAULT_NODES = ("marketplace", "wallet")
HUB = "marketplace"
CURRENCY = "bcrt"
NETWORK = "regtest"
VERSION = "v26.06.6-devnode"
START_BLOCKHEIGHT = 101
ONCHAIN_START_MSAT = 100_000_000 * 1000  # 1 BTC per node
# wallet <-> marketplace: the wallet pays repayments and deposits, the
# marketplace pays withdrawals and disbursements back.
DEFAULT_CHANNEL = {"total_sat": 30_000_000, "wallet_sat": 20_000_000}
EXTRA_CHANNEL = {"total_sat": 10_000_000, "extra_sat": 5_000_000}
RESERVE_PPM = 10_000  # 1% channel reserve on each side, as CLN's default
HOP_FEE_BASE_MSAT = 1
HOP_FEE_PPM = 10


# A waiting call re-checks that its client is still connected this often:
# a client that gave up (pyln timeout, killed app) must not pin a thread.
LIVENESS_CHECK_S = 5.0
_connection = threading.local()


def set_client_check(check: Callable[[], bool] | None) -> None:
    """Called by the server per connection: `check()` is True while the client is there."""
    _connection.check = check


def client_gone() -> bool:
    check: Callable[[], bool] | None = getattr(_connection, "check", None)
    return check is not None and not check()


@dataclass(frozen=True)
class HostedNode:
    name: str
    node_id: str
    private_key: str
    port: int


def random_hex(n_bytes: int = 32) -> str:
    return os.urandom(n_bytes).hex()


def now() -> int:
    return int(time.time())


def reserve_msat(total_msat: int) -> int:
    return total_msat * RESERVE_PPM // 1_000_000


def hop_fee_msat(amount_msat: int) -> int:
    return HOP_FEE_BASE_MSAT + amount_msat * HOP_FEE_PPM // 1_000_000


class Network:
    def __init__(self, data_dir: Path, extra_nodes: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(data_dir / "devnode.sqlite3")
        self.nodes: dict[str, HostedNode] = {}
        self._expiry_wakeup = threading.Event()
        self._stopping = threading.Event()
        self._next_wake_at = 0.0
        self._bootstrap(DEFAULT_NODES + tuple(n for n in extra_nodes if n not in DEFAULT_NODES))

    # -- set-up ---------------------------------------------------------

    def _bootstrap(self, names: tuple[str, ...]) -> None:
        for row in self.store.all("SELECT * FROM nodes ORDER BY rowid"):
            self.nodes[row["name"]] = HostedNode(
                row["name"], row["node_id"], row["private_key"], row["port"]
            )
        for name in names:
            if name in self.nodes:
                continue
            self._create_node(name)
            # A node's starting channel is opened once, when the node is born:
            # a channel the operator closed stays closed across restarts.
            if name == "wallet":
                total, ours = DEFAULT_CHANNEL["total_sat"], DEFAULT_CHANNEL["wallet_sat"]
            elif name != HUB:
                total, ours = EXTRA_CHANNEL["total_sat"], EXTRA_CHANNEL["extra_sat"]
            else:
                continue
            self.open_channel(name, HUB, total * 1000, ours * 1000, from_onchain=False)

    def _create_node(self, name: str) -> None:
        key = random_hex()
        node = HostedNode(name, issuer.node_id_for(key), key, 19735 + len(self.nodes))
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO nodes (name, node_id, private_key, port) VALUES (?, ?, ?, ?)",
                (node.name, node.node_id, node.private_key, node.port),
            )
            db.execute(
                "INSERT INTO outputs (node, txid, output, amount_msat, blockheight) "
                "VALUES (?, ?, 0, ?, 1)",
                (name, random_hex(), ONCHAIN_START_MSAT),
            )
        self.nodes[name] = node

    # -- lookups --------------------------------------------------------

    def by_id(self, node_id: str) -> HostedNode | None:
        for node in self.nodes.values():
            if node.node_id == node_id:
                return node
        return None

    def blockheight(self) -> int:
        return self.store.meta("blockheight", START_BLOCKHEIGHT)

    def open_channel(
        self, opener: str, peer: str, total_msat: int, opener_msat: int, from_onchain: bool
    ) -> dict[str, object]:
        with self.store.transaction() as db:
            height = self.store.meta("blockheight", START_BLOCKHEIGHT) + 1
            count = db.execute("SELECT COUNT(*) FROM channels").fetchone()[0]
            txid = random_hex()
            if from_onchain:
                self._spend_onchain(db, opener, total_msat)
            db.execute(
                "INSERT INTO channels (opener, peer, short_channel_id, channel_id, "
                "funding_txid, total_msat, opener_msat, state, opened_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'CHANNELD_NORMAL', ?)",
                (opener, peer, f"{height}x{count + 1}x0", random_hex(), txid,
                 total_msat, opener_msat, now()),
            )
            db.execute("INSERT OR IGNORE INTO peers VALUES (?, ?)", (opener, peer))
            db.execute("INSERT OR IGNORE INTO peers VALUES (?, ?)", (peer, opener))
            # Six blocks pass so the channel is usable at once.
            self.store.set_meta(db, "blockheight", height + 5)
            row = db.execute("SELECT * FROM channels WHERE funding_txid = ?", (txid,)).fetchone()
        return dict(row)

    def _spend_onchain(self, db: sqlite3.Connection, node: str, amount_msat: int) -> None:
        rows = db.execute(
            "SELECT txid, output, amount_msat FROM outputs WHERE node = ? AND spent = 0",
            (node,),
        ).fetchall()
        total = sum(r["amount_msat"] for r in rows)
        fee_msat = 200_000
        for r in rows:
            db.execute(
                "UPDATE outputs SET spent = 1 WHERE txid = ? AND output = ?", (r["txid"], r["output"])
            )
        change = total - amount_msat - fee_msat
        if change > 0:
            db.execute(
                "INSERT INTO outputs (node, txid, output, amount_msat, blockheight) "
                "VALUES (?, ?, 1, ?, ?)",
                (node, random_hex(), change, self.store.meta("blockheight", START_BLOCKHEIGHT) + 1),
            )

    def onchain_msat(self, node: str) -> int:
        row = self.store.one(
            "SELECT COALESCE(SUM(amount_msat), 0) AS total FROM outputs WHERE node = ? AND spent = 0",
            (node,),
        )
        return int(row["total"]) if row else 0

    # -- the expiry clock -----------------------------------------------

    def expire_due(self) -> None:
        """Mark unpaid invoices past expiry as expired, each taking an updated_index."""
        moment = now()
        due = self.store.all(
            "SELECT node, created_index FROM invoices WHERE status = 'unpaid' AND expires_at <= ? "
            "ORDER BY expires_at, created_index",
            (moment,),
        )
        if not due:
            return
        with self.store.transaction() as db:
            for row in due:
                updated = self.store.bump(db, row["node"], "invoices_updated")
                db.execute(
                    "UPDATE invoices SET status = 'expired', updated_index = ? "
                    "WHERE node = ? AND created_index = ? AND status = 'unpaid'",
                    (updated, row["node"], row["created_index"]),
                )

    def next_expiry_in(self) -> float:
        row = self.store.one(
            "SELECT MIN(expires_at) AS at FROM invoices WHERE status = 'unpaid'"
        )
        if row is None or row["at"] is None:
            return 60.0
        return max(0.05, min(60.0, float(row["at"]) - time.time()))

    def poke_expiry(self, expires_at: int) -> None:
        """Wake the clock early only for an invoice expiring before its next wake-up."""
        if expires_at < self._next_wake_at:
            self._expiry_wakeup.set()

    def run_expiry_clock(self) -> None:
        while not self._stopping.is_set():
            self.expire_due()
            delay = self.next_expiry_in()
            self._next_wake_at = time.time() + delay
            self._expiry_wakeup.wait(delay)
            self._expiry_wakeup.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._expiry_wakeup.set()
        with self.store.changed:
            self.store.changed.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()
