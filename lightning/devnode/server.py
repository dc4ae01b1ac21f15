"""Serving JSON-RPC 2.0 on a unix socket, framed the way lightningd frames it.

Requests arrive as bare JSON objects (pyln sends no delimiter), so the
reader decodes incrementally; every reply ends with a blank line, which is
where pyln stops reading. One thread per connection: pyln opens a new
connection per call, and waiting calls must not block the others.
"""
from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from lightning.devnode.methods import dispatch
from lightning.devnode.network import HostedNode, Network, set_client_check
from lightning.devnode.rpcerror import RpcFailure

_DECODER = json.JSONDecoder()
# Linux's sun_path holds 108 bytes; longer paths are bound through /proc.
_MAX_SUN_PATH = 100


class Recorder:
    """Appends every exchange to a JSON-lines file (for the schema tests)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _still_connected(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True  # nothing to read, but the peer is still there
    except OSError:
        return False


class _Handler(socketserver.BaseRequestHandler):
    server: "NodeServer"

    def handle(self) -> None:
        buffer = ""
        sock: socket.socket = self.request
        set_client_check(lambda: _still_connected(sock))
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk.decode("utf-8", errors="replace")
            while buffer.strip():
                try:
                    request, end = _DECODER.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break  # incomplete: read more
                buffer = buffer.lstrip()[end:]
                if not self._answer(sock, request):
                    return

    def _answer(self, sock: socket.socket, request: Any) -> bool:
        injected = self.server.take_injected(request)
        if injected is not None:
            data = injected
        else:
            data = json.dumps(self.server.respond(request)).encode() + b"\n\n"
        try:
            sock.sendall(data)
        except OSError:
            return False  # the client gave up (e.g. a timed-out `wait`)
        return True


class NodeServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, net: Network, node: HostedNode, path: Path, recorder: Recorder | None,
                 allow_inject: bool = False) -> None:
        self.allow_inject = allow_inject
        # Tests only (--dev-inject): per method, the raw bytes of the next answers to send instead.
        self._injected: dict[str, list[bytes]] = {}
        self._inject_lock = threading.Lock()
        self.net = net
        self.node = node
        self.path = path
        self.recorder = recorder
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()  # left over from a killed dev node
        self._dirfd: int | None = None
        address = str(path)
        if len(address) > _MAX_SUN_PATH:
            self._dirfd = os.open(path.parent, os.O_DIRECTORY | os.O_RDONLY)
            address = f"/proc/self/fd/{self._dirfd}/{path.name}"
        super().__init__(address, _Handler)

    def take_injected(self, request: Any) -> bytes | None:
        """An injected answer for this call, if one is queued; `dev-inject-reply` itself queues one.

        params: {"method": name, "result": any JSON} (a normal envelope around it), or
        {"method": name, "envelope": any JSON} (the whole reply), or {"method": name, "raw": text}.
        """
        if not self.allow_inject or not isinstance(request, dict):
            return None
        method = request.get("method")
        params = request.get("params")
        if method == "dev-inject-reply" and isinstance(params, dict) and isinstance(params.get("method"), str):
            if "raw" in params:
                data = str(params["raw"]).encode("utf-8", errors="replace")
            elif "envelope" in params:
                data = json.dumps(params["envelope"]).encode() + b"\n\n"
            else:
                envelope = {"jsonrpc": "2.0", "id": "<echo>", "result": params.get("result")}
                data = json.dumps(envelope).encode() + b"\n\n"
            with self._inject_lock:
                self._injected.setdefault(params["method"], []).append(data)
            return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": {}}).encode() + b"\n\n"
        with self._inject_lock:
            queue = self._injected.get(str(method))
            if not queue:
                return None
            data = queue.pop(0)
        # The normal envelope answers with the caller's id (pyln checks it).
        return data.replace(b'"<echo>"', json.dumps(request.get("id")).encode(), 1)

    def respond(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"jsonrpc": "2.0", "id": None,
                    "error": {"code": -32600, "message": "Invalid request"}}
        method = request.get("method")
        params = request.get("params")
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        try:
            if method == "notifications":
                reply["result"] = {}
            else:
                reply["result"] = dispatch(self.net, self.node, str(method), params)
        except RpcFailure as failure:
            reply["error"] = failure.to_json()
        except Exception as exc:  # a bug must answer, never hang the caller
            reply["error"] = {"code": -1, "message": f"devnode internal error: {exc!r}"}
        if self.recorder is not None:
            entry = {"node": self.node.name, "id": request.get("id"), "method": method, "params": params}
            entry.update({"response": reply["result"]} if "result" in reply else {"error": reply["error"]})
            self.recorder.write(entry)
        return reply

    def remove_socket(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        if self._dirfd is not None:
            os.close(self._dirfd)
            self._dirfd = None
