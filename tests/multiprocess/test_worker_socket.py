"""The socket `microlend serve --workers N` shares among its workers answers without Nagle's delay.

uvicorn binds it with protocol 0, and asyncio sets TCP_NODELAY only on sockets whose protocol says TCP;
without it every answer on a kept-alive connection waited ~40 ms for the client's delayed ACK.
"""
from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn

from marketplace.cli.server_commands import _TcpConfig


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


@pytest.mark.parametrize("config_class, nodelay", [(_TcpConfig, True), (uvicorn.Config, False)])
def test_connections_on_the_workers_socket_have_nagle_off(config_class: type[uvicorn.Config], nodelay: bool) -> None:
    # uvicorn's own Config is the control: it shows the delay this guards against is still there to guard.
    config = config_class("marketplace.cli.asgi:app_from_env", factory=True, workers=2, host="127.0.0.1", port=0)
    listening = config.bind_socket()
    try:
        assert bool(asyncio.run(_nodelay_of_accepted(listening))) is nodelay
    finally:
        listening.close()
