"""Running the dev node: one socket server per hosted node, until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from lightning.devnode.network import Network
from lightning.devnode.server import NodeServer, Recorder

SOCKET_NAME = "lightning-rpc"
# How often an idle server checks for shutdown (socketserver polls); also
# the upper bound on how long SIGTERM takes.
POLL_INTERVAL_S = 0.2


def socket_path(data_dir: Path, node: str) -> Path:
    return data_dir / node / SOCKET_NAME


def run(data_dir: Path, extra_nodes: Sequence[str] = (), record: Path | None = None,
        allow_inject: bool = False) -> int:
    data_dir = data_dir.resolve()
    net = Network(data_dir, tuple(extra_nodes))
    recorder = Recorder(record) if record is not None else None
    servers = [
        NodeServer(net, node, socket_path(data_dir, node.name), recorder, allow_inject=allow_inject)
        for node in net.nodes.values()
    ]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=net.run_expiry_clock, name="expiry", daemon=True)]
    threads += [
        threading.Thread(
            target=s.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S},
            name=f"rpc-{s.node.name}", daemon=True,
        )
        for s in servers
    ]
    for t in threads:
        t.start()
    for s in servers:
        print(f"devnode: {s.node.name} {s.node.node_id} at {s.path}", flush=True)
    while not stop.wait(1.0):
        pass
    net.stop()
    # Each server notices shutdown at its next poll: stop them all at once.
    stoppers = [threading.Thread(target=s.shutdown) for s in servers]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
    for s in servers:
        s.server_close()
        s.remove_socket()
    if recorder is not None:
        recorder.close()
    net.store.close()
    print("devnode: stopped", flush=True)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path("data/devnode"),
                        help="where the sockets and devnode.sqlite3 live (default ./data/devnode)")
    parser.add_argument("--nodes", type=parse_nodes, default=[],
                        help="comma-separated extra nodes, each with a channel to marketplace")
    parser.add_argument("--record", type=Path, default=None,
                        help="append every JSON-RPC exchange to this JSON-lines file")
    parser.add_argument("--dev-inject", action="store_true",
                        help="tests only: accept `dev-inject-reply` to make the next call of a method answer "
                             "whatever is given (nonsense for the fuzz tests)")


def parse_nodes(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        # Names become directory names and socket paths.
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name):
            raise argparse.ArgumentTypeError(
                f"node name {name!r}: use 1-32 lowercase letters, digits, '-' or '_'"
            )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightning.devnode")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.data_dir, args.nodes, args.record, args.dev_inject)


if __name__ == "__main__":
    sys.exit(main())
