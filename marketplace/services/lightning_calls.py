"""Running blocking database work from async code, and the node facts services need."""
from __future__ import annotations

import time
from collections.abc import Callable
from types import MappingProxyType
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Connection

from lightning.errors import LightningError, NodeUnreachable
from lightning.port import LightningPort, NodeInfo
from marketplace.db.engine import Database
from marketplace.db.offloop import in_transaction, reading
from marketplace.domain.errors import LightningUnavailable
from marketplace.domain.messages import Message, N_, as_message

T = TypeVar("T")


# The services' names for marketplace/db/offloop.py (where marketplace/payments/ takes them from too).
__all__ = ["in_transaction", "reading"]


def node_said(exc: LightningError) -> Message:
    """A Lightning error's sentence for people: marked ones (lightning/invoices.py) translate with their values."""
    if exc.params is not None:
        return Message(exc.msgid, MappingProxyType(dict(exc.params)))
    return as_message(exc.msgid)


class NodeFacts:
    """getinfo, cached briefly: every withdrawal needs the network and our node id."""

    def __init__(self, port: LightningPort, ttl_s: float = 30.0) -> None:
        self.port = port
        self.ttl_s = ttl_s
        self._info: NodeInfo | None = None
        self._at = 0.0

    async def get(self, *, fresh: bool = False) -> NodeInfo:
        """getinfo from the cache; `fresh` asks the node now (a liveness check before holding money)."""
        if fresh or self._info is None or time.monotonic() - self._at > self.ttl_s:
            try:
                self._info = await self.port.node_info()
            except NodeUnreachable as exc:
                raise LightningUnavailable(N_(
                    "The Lightning node cannot be reached right now; nothing was changed. Try again in a minute.")
                ) from exc
            except LightningError as exc:
                raise LightningUnavailable(N_("The Lightning node did not answer properly: %(reason)s",
                                                reason=node_said(exc))) from exc
            self._at = time.monotonic()
        return self._info
