"""The socket `microlend serve --workers N` shares among its workers answers without Nagle's delay.

asyncio sets TCP_NODELAY only on accepted sockets whose protocol says TCP. uvicorn before 0.55 bound the shared
socket with protocol 0 (Kludex/uvicorn#3149), and every answer on a kept-alive connection waited ~40 ms for the
client's delayed ACK; we bound it ourselves until 0.55 fixed it, and require 0.55 since. This guards that.
"""
from __future__ import annotations

import asyncio
import socket

import uvicorn



async def _nodelay_of_accepted(listening: socket.socket) -> int:
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        found = await asyncio.wait_for(accepted, 10)
        writer.close()
        return found
    finally:
        server.close()


def test_connections_on_the_workers_socket_have_nagle_off() -> None:
    config = uvicorn.Config("marketplace.cli.asgi:app_from_env", factory=True, workers=2, host="127.0.0.1", port=0)
    listening = config.bind_socket()
    try:
        assert asyncio.run(_nodelay_of_accepted(listening)) == 1
        # The control: a socket bound as uvicorn did before 0.55 gets Nagle (the test can tell the two apart).
        old = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        old.bind(("127.0.0.1", 0))
        old.listen()
        try:
            assert asyncio.run(_nodelay_of_accepted(old)) == 0
        finally:
            old.close()
    finally:
        listening.close()
