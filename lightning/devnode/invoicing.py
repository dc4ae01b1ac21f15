"""Receiving: invoice, listinvoices, waitanyinvoice, waitinvoice, delinvoice, wait, decode."""
from __future__ import annotations

import hashlib
import sqlite3
import time
from typing import Any

from lightning.devnode import issuer
from lightning.devnode import params as p
from lightning.devnode.network import (
    CURRENCY,
    LIVENESS_CHECK_S,
    HostedNode,
    Network,
    client_gone,
    now,
    random_hex,
    reserve_msat,
)
from lightning.devnode.rpcerror import (
    INVALID_PARAMS,
    INVOICE_EXPIRED_DURING_WAIT,
    INVOICE_LABEL_ALREADY_EXISTS,
    INVOICE_NOT_FOUND,
    INVOICE_PREIMAGE_ALREADY_EXISTS,
    INVOICE_STATUS_UNEXPECTED,
    INVOICE_WAIT_TIMED_OUT,
    LIGHTNINGD,
    RpcFailure,
)

Json = dict[str, Any]
DEFAULT_EXPIRY_S = 7 * 24 * 3600


def invoice_json(row: dict[str, Any]) -> Json:
    """An invoice as listinvoices shows it, keys in CLN's order."""
    out: Json = {"label": row["label"], "bolt11": row["bolt11"], "payment_hash": row["payment_hash"]}
    if row["amount_msat"] is not None:
        out["amount_msat"] = row["amount_msat"]
    out["status"] = row["status"]
    if row["status"] == "paid":
        out["pay_index"] = row["pay_index"]
        out["amount_received_msat"] = row["amount_received_msat"]
        out["paid_at"] = row["paid_at"]
        out["payment_preimage"] = row["preimage"]
    out["description"] = row["description"]
    out["expires_at"] = row["expires_at"]
    out["created_index"] = row["created_index"]
    if row["updated_index"] is not None:
        out["updated_index"] = row["updated_index"]
    return out


def _incoming_capacity_msat(net: Network, node: HostedNode) -> int:
    rows = net.store.all(
        "SELECT * FROM channels WHERE state = 'CHANNELD_NORMAL' AND (opener = ? OR peer = ?)",
        (node.name, node.name),
    )
    total = 0
    for ch in rows:
        ours = ch["opener_msat"] if ch["opener"] == node.name else ch["total_msat"] - ch["opener_msat"]
        total += max(0, ch["total_msat"] - ours - reserve_msat(ch["total_msat"]))
    return total


def prepare_invoice(
    node: HostedNode,
    *,
    label: str,
    amount_msat: int | None,
    description: str,
    expiry_s: int,
    preimage: str,
    cltv: int = issuer.DEFAULT_CLTV,
    deschashonly: bool = False,
) -> dict[str, Any]:
    """The invoice row, signed; done outside the store lock because signing is the slow part."""
    created_at = now()
    payment_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    secret = random_hex()
    bolt11 = issuer.issue(
        private_key_hex=node.private_key, currency=CURRENCY, amount_msat=amount_msat,
        description=description, payment_hash=payment_hash, payment_secret=secret,
        created_at=created_at, expiry_s=expiry_s, cltv=cltv, deschashonly=deschashonly,
    )
    return {
        "node": node.name, "created_index": None, "label": label, "bolt11": bolt11,
        "payment_hash": payment_hash, "payment_secret": secret, "preimage": preimage,
        "amount_msat": amount_msat, "description": description,
        "expires_at": created_at + expiry_s, "status": "unpaid", "updated_index": None,
        "pay_index": None, "amount_received_msat": None, "paid_at": None,
    }


def insert_invoice(db: sqlite3.Connection, net: Network, row: dict[str, Any]) -> dict[str, Any]:
    if db.execute(
        "SELECT 1 FROM invoices WHERE node = ? AND label = ?", (row["node"], row["label"])
    ).fetchone():
        raise RpcFailure(INVOICE_LABEL_ALREADY_EXISTS, f"Duplicate label '{row['label']}'")
    if db.execute(
        "SELECT 1 FROM invoices WHERE node = ? AND payment_hash = ?",
        (row["node"], row["payment_hash"]),
    ).fetchone():
        raise RpcFailure(INVOICE_PREIMAGE_ALREADY_EXISTS, "preimage already used")
    row = dict(row, created_index=net.store.bump(db, row["node"], "invoices_created"))
    db.execute(
        "INSERT INTO invoices (node, created_index, label, bolt11, payment_hash, payment_secret, "
        "preimage, amount_msat, description, expires_at, status) "
        "VALUES (:node, :created_index, :label, :bolt11, :payment_hash, :payment_secret, "
        ":preimage, :amount_msat, :description, :expires_at, :status)",
        row,
    )
    return row


INVOICE_PARAMS: p.Spec = (
    ["amount_msat", "label", "description", "expiry", "fallbacks", "preimage",
     "exposeprivatechannels", "cltv", "deschashonly"],
    {"amount_msat", "label", "description"},
    {"amount_msat": p.msat_or_any, "label": p.label, "description": p.string, "expiry": p.u64,
     "preimage": p.hex32, "cltv": p.u64, "deschashonly": p.boolean},
)


def invoice(net: Network, node: HostedNode, args: Json) -> Json:
    amount_msat = args["amount_msat"]
    prepared = prepare_invoice(
        node, label=args["label"], amount_msat=amount_msat,
        description=args["description"], expiry_s=args.get("expiry", DEFAULT_EXPIRY_S),
        preimage=args.get("preimage") or random_hex(), cltv=args.get("cltv", issuer.DEFAULT_CLTV),
        deschashonly=args.get("deschashonly", False),
    )
    with net.store.transaction() as db:
        row = insert_invoice(db, net, prepared)
    net.poke_expiry(int(row["expires_at"]))
    reply: Json = {
        "payment_hash": row["payment_hash"], "expires_at": row["expires_at"],
        "bolt11": row["bolt11"], "payment_secret": row["payment_secret"],
        "created_index": row["created_index"],
    }
    if amount_msat is not None and _incoming_capacity_msat(net, node) < amount_msat:
        reply["warning_capacity"] = "Insufficient incoming channel capacity to pay invoice"
    return reply


LISTINVOICES_PARAMS: p.Spec = (
    ["label", "invstring", "payment_hash", "offer_id", "index", "start", "limit"],
    set(),
    {"label": p.label, "invstring": p.string, "payment_hash": p.hex32, "offer_id": p.string,
     "index": p.one_of("created", "updated"), "start": p.u64, "limit": p.u64},
)


def listinvoices(net: Network, node: HostedNode, args: Json) -> Json:
    filters = [k for k in ("label", "invstring", "payment_hash", "offer_id") if k in args]
    if len(filters) > 1:
        raise RpcFailure(INVALID_PARAMS, "Can only specify one of {label}, {invstring}, {payment_hash} or {offer_id}")
    if ("start" in args or "limit" in args) and "index" not in args:
        raise RpcFailure(INVALID_PARAMS, "Can only specify {start} or {limit} with {index}")
    where, values = ["node = ?"], [node.name]
    if filters:
        column = {"label": "label", "invstring": "bolt11", "payment_hash": "payment_hash",
                  "offer_id": "'no offers'"}[filters[0]]
        value = args[filters[0]]
        where.append(f"{column} = ?")
        values.append(value.lower() if filters[0] == "invstring" else value)
    order = "created_index"
    if args.get("index") == "updated":
        order = "updated_index"
        where.append("updated_index >= ?")
        values.append(args.get("start", 0))
    elif args.get("index") == "created":
        where.append("created_index >= ?")
        values.append(args.get("start", 0))
    sql = f"SELECT * FROM invoices WHERE {' AND '.join(where)} ORDER BY {order}"
    if "limit" in args:
        sql += f" LIMIT {int(args['limit'])}"
    return {"invoices": [invoice_json(r) for r in net.store.all(sql, tuple(values))]}


def _wait_for_change(net: Network, remaining: float | None) -> None:
    """Sleep until the store changes; give up if the client left or we are stopping."""
    if net.stopping:
        raise RpcFailure(LIGHTNINGD, "lightningd is shutting down")
    net.store.changed.wait(LIVENESS_CHECK_S if remaining is None else min(remaining, LIVENESS_CHECK_S))
    if client_gone():
        raise RpcFailure(LIGHTNINGD, "client disconnected")


WAITANY_PARAMS: p.Spec = (["lastpay_index", "timeout"], set(), {"lastpay_index": p.s64, "timeout": p.u64})


def waitanyinvoice(net: Network, node: HostedNode, args: Json) -> Json:
    last = max(0, args.get("lastpay_index", 0))
    timeout = args.get("timeout")
    deadline = None if timeout is None else time.monotonic() + timeout
    with net.store.changed:
        while True:
            row = net.store.one(
                "SELECT * FROM invoices WHERE node = ? AND pay_index > ? ORDER BY pay_index LIMIT 1",
                (node.name, last),
            )
            if row is not None:
                return invoice_json(row)
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or net.stopping:
                raise RpcFailure(INVOICE_WAIT_TIMED_OUT, "Timed out while waiting for invoice to be paid")
            _wait_for_change(net, remaining)


WAITINVOICE_PARAMS: p.Spec = (["label"], {"label"}, {"label": p.label})


def waitinvoice(net: Network, node: HostedNode, args: Json) -> Json:
    with net.store.changed:
        while True:
            row = net.store.one(
                "SELECT * FROM invoices WHERE node = ? AND label = ?", (node.name, args["label"])
            )
            if row is None:
                raise RpcFailure(LIGHTNINGD, "Label not found")
            if row["status"] == "paid":
                return invoice_json(row)
            if row["status"] == "expired":
                raise RpcFailure(INVOICE_EXPIRED_DURING_WAIT, "invoice expired during wait", invoice_json(row))
            _wait_for_change(net, None)


DELINVOICE_PARAMS: p.Spec = (
    ["label", "status", "desconly"], {"label", "status"},
    {"label": p.label, "status": p.one_of("paid", "expired", "unpaid"), "desconly": p.boolean},
)


def delinvoice(net: Network, node: HostedNode, args: Json) -> Json:
    with net.store.transaction() as db:
        found = db.execute(
            "SELECT * FROM invoices WHERE node = ? AND label = ?", (node.name, args["label"])
        ).fetchone()
        if found is None:
            raise RpcFailure(INVOICE_NOT_FOUND, "Unknown invoice")
        row = dict(found)
        if row["status"] != args["status"]:
            raise RpcFailure(
                INVOICE_STATUS_UNEXPECTED,
                f"Invoice status is {row['status']} not {args['status']}",
                {"current_status": row["status"], "expected_status": args["status"]},
            )
        reply = invoice_json(row)
        if args.get("desconly"):
            # CLN keeps the invoice and forgets only its description.
            db.execute(
                "UPDATE invoices SET description = '' WHERE node = ? AND label = ?",
                (node.name, args["label"]),
            )
            reply.pop("description", None)
        else:
            db.execute("DELETE FROM invoices WHERE node = ? AND label = ?", (node.name, args["label"]))
            net.store.bump(db, node.name, "invoices_deleted")
    return reply


WAIT_PARAMS: p.Spec = (
    ["subsystem", "indexname", "nextvalue"], {"subsystem", "indexname", "nextvalue"},
    {"subsystem": p.one_of("invoices", "forwards", "sendpays", "htlcs", "chainmoves",
                           "channelmoves", "networkevents"),
     "indexname": p.one_of("created", "updated", "deleted"), "nextvalue": p.u64},
)


def wait(net: Network, node: HostedNode, args: Json) -> Json:
    subsystem, indexname = args["subsystem"], args["indexname"]
    column = {
        ("invoices", "created"): "invoices_created", ("invoices", "updated"): "invoices_updated",
        ("invoices", "deleted"): "invoices_deleted", ("sendpays", "created"): "sendpays_created",
        ("sendpays", "updated"): "sendpays_updated",
    }.get((subsystem, indexname))
    with net.store.changed:
        while True:
            value = 0
            if column is not None:
                row = net.store.one(f"SELECT {column} AS v FROM nodes WHERE name = ?", (node.name,))
                value = int(row["v"]) if row else 0
            if value >= args["nextvalue"]:
                return {"subsystem": subsystem, indexname: value}
            _wait_for_change(net, None)


DECODE_PARAMS: p.Spec = (["string"], {"string"}, {"string": p.string})


def decode(net: Network, node: HostedNode, args: Json) -> Json:
    text = args["string"].strip().lower()
    if not text.startswith("ln"):
        raise RpcFailure(INVALID_PARAMS, "string: Unparsable string: invalid token (see logs for details)")
    try:
        return issuer.decode_reply(text)
    except ValueError:
        raise RpcFailure(
            INVALID_PARAMS, "string: Bad bech32 string: invalid token (see logs for details)"
        ) from None
