"""A real regtest Lightning network on one machine: bitcoind and Core Lightning nodes with channels.

Used by the real-node test tier (tests/fixtures/realnode.py) and by
`microlend regtest` (an operator trying the marketplace on a real network
without Docker). Binaries come from MICROLEND_LIGHTNINGD / MICROLEND_BITCOIND
(bitcoin-cli is taken from beside bitcoind), else from PATH.

Every daemon runs in its own session (setsid), so a shell or a test worker
ending does not take it down mid-write; `stop()` ends them by their pid.
"""
from __future__ import annotations

import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pyln.client import LightningRpc, RpcError

from lightning.cln import ClnAdapter

T = TypeVar("T")

# The Core Lightning release this project runs against: the real-node tier's binaries
# (../shared/realcln) and docker-compose.yml's images are this one (tests/unit/test_compose_files.py).
CORE_LIGHTNING_RELEASE = "v26.06.6"
RPC_USER = "microlend"
RPC_PASSWORD = "regtest-only"
# A node is usable about 1-2 s after start; bitcoind about 1 s; generous for a loaded 2-core machine.
START_TIMEOUT_S = 60.0
# Block-driven waits: the nodes poll bitcoind every second (--dev-bitcoind-poll=1).
CHAIN_TIMEOUT_S = 90.0
BTC_MSAT = 100_000_000_000


class RegtestError(RuntimeError):
    """The network could not be built or a daemon did not behave."""


@dataclass(frozen=True)
class Binaries:
    lightningd: str
    bitcoind: str
    bitcoin_cli: str

    @staticmethod
    def find(environ: Mapping[str, str] | None = None) -> Binaries:
        """The binaries named by MICROLEND_LIGHTNINGD / MICROLEND_BITCOIND, else those on PATH."""
        env = os.environ if environ is None else environ
        path = env.get("PATH", os.defpath)
        lightningd = env.get("MICROLEND_LIGHTNINGD") or shutil.which("lightningd", path=path)
        bitcoind = env.get("MICROLEND_BITCOIND") or shutil.which("bitcoind", path=path)
        missing = [name for name, found in (("lightningd", lightningd), ("bitcoind", bitcoind)) if not found]
        if missing:
            raise RegtestError(
                f"{' and '.join(missing)} not found: put Core Lightning and Bitcoin Core on PATH or name them "
                "with MICROLEND_LIGHTNINGD / MICROLEND_BITCOIND (README, 'A real Lightning network')")
        assert lightningd is not None and bitcoind is not None
        beside = Path(bitcoind).with_name("bitcoin-cli")
        bitcoin_cli = str(beside) if beside.exists() else shutil.which("bitcoin-cli", path=path)
        if not bitcoin_cli:
            raise RegtestError(f"bitcoin-cli not found beside {bitcoind} nor on PATH (lightningd's bcli needs it)")
        for binary in (lightningd, bitcoind, bitcoin_cli):
            if not os.access(binary, os.X_OK):
                raise RegtestError(f"{binary} is not an executable file")
        return Binaries(lightningd, bitcoind, bitcoin_cli)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(what: str, probe: Callable[[], T | None], timeout_s: float = CHAIN_TIMEOUT_S,
               poll_s: float = 0.1) -> T:
    """Poll `probe` until it returns something other than None/False; RegtestError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except (OSError, RpcError, ValueError, KeyError) as exc:
            last_error = exc
        time.sleep(poll_s)
    raise RegtestError(f"timed out after {timeout_s:.0f} s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


_PR_SET_PDEATHSIG = 1
# Looked up once here, not in the forked child: dlopen after fork in a threaded process can deadlock.
try:
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: stop() still ends the daemons
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies (a killed test run or `microlend regtest`
    leaves no daemon behind), while its own session keeps a terminal's Ctrl-C from reaching it mid-write."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent)


def _end(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Bitcoind:
    """bitcoind on regtest with a wallet that mines and pays."""

    def __init__(self, binary: str, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.rpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.mine_to = ""

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = _spawn([
            self.binary, "-regtest", f"-datadir={self.data_dir}", f"-rpcport={self.rpc_port}",
            f"-rpcuser={RPC_USER}", f"-rpcpassword={RPC_PASSWORD}", "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1", "-server", "-listen=0", "-fallbackfee=0.0002", "-txindex",
            "-printtoconsole=0", "-rpcthreads=16", "-rpcworkqueue=256",
        ], self.data_dir / "bitcoind.out")
        wait_until("bitcoind's RPC", self._ready, START_TIMEOUT_S)
        self.rpc("createwallet", "miner")
        self.mine_to = str(self.rpc("getnewaddress"))

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RegtestError(f"bitcoind exited with {self.process.returncode}: see {self.data_dir}/bitcoind.out")
        try:
            self.rpc("getblockchaininfo")
        except RegtestError:
            return False
        return True

    def rpc(self, method: str, *params: Any, wallet: bool = False) -> Any:
        url = f"http://127.0.0.1:{self.rpc_port}/" + ("wallet/miner" if wallet else "")
        body = json.dumps({"jsonrpc": "1.0", "id": "microlend", "method": method, "params": list(params)}).encode()
        auth = base64.b64encode(f"{RPC_USER}:{RPC_PASSWORD}".encode()).decode()
        request = urllib.request.Request(url, data=body, headers={"Authorization": f"Basic {auth}",
                                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # bitcoind answers RPC errors with HTTP 500 and a JSON body
            try:
                reply = json.loads(exc.read())
            except ValueError:
                raise RegtestError(f"bitcoind {method}: HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise RegtestError(f"bitcoind {method}: {exc}") from exc
        if reply.get("error"):
            raise RegtestError(f"bitcoind {method}: {reply['error']}")
        return reply["result"]

    def mine(self, blocks: int = 1) -> int:
        self.rpc("generatetoaddress", blocks, self.mine_to)
        return int(self.rpc("getblockcount"))

    def send(self, address: str, btc: str) -> str:
        return str(self.rpc("sendtoaddress", address, btc, wallet=True))

    def stop(self) -> None:
        _end(self.process)
        self.process = None


@dataclass
class ClnNode:
    """One lightningd on regtest."""

    name: str
    binaries: Binaries
    lightning_dir: Path
    bitcoind: Bitcoind
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def rpc_path(self) -> str:
        return str(self.lightning_dir / "regtest" / "lightning-rpc")

    def rpc(self) -> LightningRpc:
        return LightningRpc(self.rpc_path)

    def command(self) -> list[str]:
        return [
            self.binaries.lightningd, "--network=regtest", f"--lightning-dir={self.lightning_dir}",
            f"--bitcoin-cli={self.binaries.bitcoin_cli}", f"--bitcoin-rpcuser={RPC_USER}",
            f"--bitcoin-rpcpassword={RPC_PASSWORD}", "--bitcoin-rpcconnect=127.0.0.1",
            f"--bitcoin-rpcport={self.bitcoind.rpc_port}", f"--addr=127.0.0.1:{self.port}",
            f"--alias={self.name}", f"--log-file={self.lightning_dir / 'log'}", "--log-level=info",
            # Developer options, all for speed on regtest: poll the chain every second, gossip at once,
            # reconnect within seconds after a restart.
            "--developer", "--dev-bitcoind-poll=1", "--dev-fast-gossip", "--dev-fast-reconnect",
        ]

    def start(self) -> None:
        self.lightning_dir.mkdir(parents=True, exist_ok=True)
        # A SIGKILLed node leaves its socket behind; lightningd replaces it, but a stale one would
        # answer "connection refused" to the readiness probe until then, which is fine.
        self.process = _spawn(self.command(), self.lightning_dir / "lightningd.out")
        info = wait_until(f"lightningd {self.name}", self._ready, START_TIMEOUT_S)
        self.node_id = str(info["id"])

    def _ready(self) -> dict[str, Any] | None:
        if self.process is not None and self.process.poll() is not None:
            raise RegtestError(f"lightningd {self.name} exited with {self.process.returncode}: "
                               f"{self.log_tail()}")
        info: dict[str, Any] = self.rpc().getinfo()
        # Ready when it has caught up with bitcoind: before that, invoices and payments are refused.
        if "warning_bitcoind_sync" in info or "warning_lightningd_sync" in info:
            return None
        return info

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("lightningd.out", "log"):
            path = self.lightning_dir / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def stop(self) -> None:
        """As an operator would: `stop` over RPC, then SIGTERM, then SIGKILL."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.rpc().stop()
            except (OSError, RpcError, ValueError):
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _end(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash in the middle of whatever it was doing."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def blockheight(self) -> int:
        return int(self.rpc().getinfo()["blockheight"])

    def usable_channels(self) -> list[dict[str, Any]]:
        channels: list[dict[str, Any]] = self.rpc().call("listpeerchannels")["channels"]
        return [c for c in channels if c.get("state") == "CHANNELD_NORMAL" and c.get("peer_connected")]


@dataclass(frozen=True)
class ChannelPlan:
    """`funder` opens a channel of `amount_sat` to `fundee`, giving it `push_sat` at once (so both can pay)."""

    funder: str
    fundee: str
    amount_sat: int
    push_sat: int = 0


class RegtestNetwork:
    """bitcoind plus named lightningd nodes joined by the planned channels."""

    def __init__(self, base_dir: Path, node_names: Iterable[str], channels: Iterable[ChannelPlan],
                 binaries: Binaries | None = None) -> None:
        self.base_dir = base_dir
        self.binaries = binaries or Binaries.find()
        self.bitcoind = Bitcoind(self.binaries.bitcoind, base_dir / "bitcoind")
        self.nodes = {name: ClnNode(name, self.binaries, base_dir / name, self.bitcoind) for name in node_names}
        self.channels = tuple(channels)

    def __getitem__(self, name: str) -> ClnNode:
        return self.nodes[name]

    def rpc_path(self, name: str = "marketplace") -> str:
        return self.nodes[name].rpc_path

    def rpc(self, name: str = "marketplace") -> LightningRpc:
        return self.nodes[name].rpc()

    def adapter(self, name: str = "marketplace") -> ClnAdapter:
        return ClnAdapter(self.nodes[name].rpc_path)

    def start(self) -> None:
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    def _build(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.bitcoind.start()
        self.bitcoind.mine(101)  # coinbase outputs spendable after 100 blocks
        for node in self.nodes.values():
            node.start()
        funders = {plan.funder for plan in self.channels}
        for name in funders:
            reply = self.nodes[name].rpc().newaddr()
            address = reply.get("p2tr") or reply["bech32"]  # v26 answers p2tr by default
            self.bitcoind.send(address, "1")
        height = self.bitcoind.mine(1)
        for name in funders:
            node = self.nodes[name]
            wait_until(f"{name} to see its coins", lambda n=node: self._confirmed_funds(n, height))  # type: ignore[misc]
        for plan in self.channels:
            funder, fundee = self.nodes[plan.funder], self.nodes[plan.fundee]
            funder.rpc().connect(fundee.node_id, "127.0.0.1", fundee.port)
            funder.rpc().call("fundchannel", {"id": fundee.node_id, "amount": plan.amount_sat,
                                              "push_msat": plan.push_sat * 1000})
            # Each funding spends change from the last one: confirm it so the next can start.
            height = self.bitcoind.mine(1)
            wait_until(f"{plan.funder} to see block {height}",
                       lambda n=funder, h=height: n.blockheight() >= h)  # type: ignore[misc]
        # Usable at 3 confirmations (CLN's default), announced at 6: mine past both.
        height = self.bitcoind.mine(6)
        self.wait_synced(height)
        for plan in self.channels:
            self.wait_channel(plan.funder, plan.fundee)
        self.wait_gossip()

    @staticmethod
    def _confirmed_funds(node: ClnNode, height: int) -> bool:
        if node.blockheight() < height:
            return False
        outputs = node.rpc().listfunds()["outputs"]
        return any(o["status"] == "confirmed" for o in outputs)

    def wait_synced(self, height: int | None = None) -> None:
        target = height if height is not None else int(self.bitcoind.rpc("getblockcount"))
        for node in self.nodes.values():
            if node.process is not None:
                wait_until(f"{node.name} at block {target}", lambda n=node: n.blockheight() >= target)  # type: ignore[misc]

    def wait_channel(self, a: str, b: str) -> None:
        """Until `a` and `b` both see their channel usable and the peer connected."""
        left, right = self.nodes[a], self.nodes[b]
        for node, peer in ((left, right), (right, left)):
            wait_until(f"{node.name}'s channel with {peer.name}",
                       lambda n=node, p=peer: any(c["peer_id"] == p.node_id for c in n.usable_channels()))  # type: ignore[misc]

    def wait_gossip(self) -> None:
        """Until every node knows every public channel in both directions, so payments route."""
        expected = 2 * len(self.channels)
        for node in self.nodes.values():
            if node.process is not None:
                wait_until(f"{node.name} to learn the channel graph",
                           lambda n=node: len([c for c in n.rpc().listchannels()["channels"]
                                               if c.get("active")]) >= expected)  # type: ignore[misc]

    def restart(self, name: str, *, kill: bool = False) -> None:
        """Stop (or SIGKILL) one node and start it again; returns once its channels are usable again."""
        node = self.nodes[name]
        if kill:
            node.kill()
        else:
            node.stop()
        node.start()
        for plan in self.channels:
            if name in (plan.funder, plan.fundee):
                self.wait_channel(plan.funder, plan.fundee)
        self.forget_failures()

    def forget_failures(self) -> None:
        """Drop what every node's xpay learned from payments that failed while a peer was down.

        xpay keeps the limits it infers from failures in its persistent `xpay` layer and lets them age
        slowly; after a deliberate outage they would hold a healthy channel to a fraction of its capacity
        (seen here: "layer xpay says max is 2001999msat" on a channel with millions to spare).
        """
        cutoff = int(time.time()) + 1
        for node in self.nodes.values():
            if node.process is not None:
                node.rpc().call("askrene-age", {"layer": "xpay", "cutoff": cutoff})

    def stop(self) -> None:
        for node in self.nodes.values():
            try:
                node.stop()
            except Exception:  # noqa: BLE001 - tearing down: the others must still stop
                if node.process is not None:
                    node.kill()
        self.bitcoind.stop()


def marketplace_network(base_dir: Path, *, with_router: bool = True,
                        binaries: Binaries | None = None) -> RegtestNetwork:
    """The marketplace's node, a wallet's node with a channel to it (half pushed across, so both
    sides can pay), and optionally carol behind the wallet, so a payment routes and pays a fee."""
    names = ["marketplace", "wallet"] + (["carol"] if with_router else [])
    plans = [ChannelPlan("wallet", "marketplace", 10_000_000, 5_000_000)]
    if with_router:
        plans.append(ChannelPlan("wallet", "carol", 5_000_000, 2_500_000))
    return RegtestNetwork(base_dir, names, plans, binaries)
