"""Turn CLN JSON replies into the port's frozen result types.

Kept apart from the adapter so the field knowledge (which keys are optional,
which are warnings) lives in one place and is unit-testable on transcripts.
"""
from __future__ import annotations

from typing import Any

from lightning.port import (
    Channel,
    ChannelFunds,
    CreatedInvoice,
    DecodedPayment,
    Funds,
    InvoiceStatus,
    InvoiceUpdate,
    NodeInfo,
    OnchainOutput,
)

Json = dict[str, Any]


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _warnings(reply: Json) -> tuple[str, ...]:
    return tuple(f"{key}: {value}" for key, value in reply.items() if key.startswith("warning_"))


def created_invoice(label: str, reply: Json) -> CreatedInvoice:
    return CreatedInvoice(
        label=label,
        payment_hash=reply["payment_hash"],
        bolt11=reply["bolt11"],
        payment_secret=reply["payment_secret"],
        expires_at=int(reply["expires_at"]),
        created_index=int(reply["created_index"]),
        warnings=_warnings(reply),
    )


def invoice(reply: Json) -> InvoiceUpdate:
    return InvoiceUpdate(
        label=reply["label"],
        payment_hash=reply["payment_hash"],
        status=InvoiceStatus(reply["status"]),
        amount_msat=_opt_int(reply.get("amount_msat")),
        bolt11=reply.get("bolt11"),
        description=reply.get("description"),
        expires_at=int(reply["expires_at"]),
        created_index=int(reply["created_index"]),
        updated_index=_opt_int(reply.get("updated_index")),
        pay_index=_opt_int(reply.get("pay_index")),
        amount_received_msat=_opt_int(reply.get("amount_received_msat")),
        paid_at=_opt_int(reply.get("paid_at")),
        payment_preimage=reply.get("payment_preimage"),
    )


def decoded(reply: Json) -> DecodedPayment:
    return DecodedPayment(
        currency=reply.get("currency", ""),
        payee=reply.get("payee", ""),
        payment_hash=reply.get("payment_hash", ""),
        amount_msat=_opt_int(reply.get("amount_msat")),
        created_at=int(reply.get("created_at", 0)),
        expiry=int(reply.get("expiry", 3600)),
        description=reply.get("description"),
        valid=bool(reply.get("valid", False)),
    )


def node_info(reply: Json) -> NodeInfo:
    return NodeInfo(
        id=reply["id"],
        alias=reply.get("alias", ""),
        network=reply["network"],
        blockheight=int(reply["blockheight"]),
        version=reply["version"],
        warnings=_warnings(reply),
    )


def channel(reply: Json) -> Channel:
    return Channel(
        peer_id=reply["peer_id"],
        short_channel_id=reply.get("short_channel_id"),
        state=reply["state"],
        total_msat=int(reply.get("total_msat", 0)),
        to_us_msat=int(reply.get("to_us_msat", 0)),
        spendable_msat=int(reply.get("spendable_msat", 0)),
        receivable_msat=int(reply.get("receivable_msat", 0)),
    )


def funds(reply: Json) -> Funds:
    outputs = tuple(
        OnchainOutput(
            txid=o["txid"],
            output=int(o["output"]),
            amount_msat=int(o["amount_msat"]),
            status=o["status"],
        )
        for o in reply.get("outputs", [])
    )
    channels = tuple(
        ChannelFunds(
            peer_id=c["peer_id"],
            state=c["state"],
            our_amount_msat=int(c["our_amount_msat"]),
            amount_msat=int(c["amount_msat"]),
        )
        for c in reply.get("channels", [])
    )
    return Funds(outputs=outputs, channels=channels)


def version_tuple(version: str) -> tuple[int, int]:
    """'v24.11.1-modded' -> (24, 11); unparsable versions count as new."""
    core = version.lstrip("v").split("-")[0]
    parts = core.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (99, 0)
