"""What the operator sees of the node and the workers: read-only, tolerant of a node that is down."""
from __future__ import annotations

from dataclasses import dataclass

from lightning.errors import LightningError
from lightning.port import Channel, LightningPort, NodeInfo
from marketplace.db import invoices, outgoing
from marketplace.db.engine import Database
from marketplace.db.invoices import Cursor
from marketplace.db.outgoing import OutgoingRow
from marketplace.services.lightning_calls import reading


@dataclass(frozen=True)
class NodeStatus:
    info: NodeInfo | None
    channels: tuple[Channel, ...]
    error: str
    cursor: Cursor
    open_payments: tuple[OutgoingRow, ...]

    @property
    def outbound_msat(self) -> int:
        return sum(c.spendable_msat for c in self.channels if c.usable)

    @property
    def inbound_msat(self) -> int:
        return sum(c.receivable_msat for c in self.channels if c.usable)


async def node_status(database: Database, port: LightningPort) -> NodeStatus:
    cursor = await reading(database, invoices.cursor)
    pending = await reading(database, lambda c: outgoing.open_payments(c))
    try:
        info = await port.node_info()
        channels = await port.channels()
    except LightningError as exc:
        return NodeStatus(None, (), exc.message, cursor, tuple(pending))
    return NodeStatus(info, tuple(channels), "", cursor, tuple(pending))
