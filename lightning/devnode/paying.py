"""Sending: xpay, pay, keysend, xkeysend, listpays, listsendpays.

A payment between hosted nodes settles atomically in one store transaction:
route over direct channels (or one hop through another hosted node), move
the balances, mark the payee's invoice paid with the next pay_index, record
the payer's sendpay. Nothing is recorded when no route exists, as on CLN.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from typing import Any

from lightning.devnode import issuer
from lightning.devnode import params as p
from lightning.devnode.invoicing import DEFAULT_EXPIRY_S, insert_invoice, prepare_invoice
from lightning.devnode.network import (
    CURRENCY,
    HostedNode,
    Network,
    hop_fee_msat,
    now,
    random_hex,
    reserve_msat,
)
from lightning.devnode.rpcerror import (
    INVALID_PARAMS,
    PAY_DESTINATION_PERM_FAIL,
    PAY_INJECTPAYMENTONION_ALREADY_PAID,
    PAY_INVOICE_EXPIRED,
    PAY_ROUTE_NOT_FOUND,
    PAY_ROUTE_TOO_EXPENSIVE,
    RpcFailure,
)

Json = dict[str, Any]
Hop = tuple[int, str, int]  # channel row id, sending node name, amount moved


def _spendable(ch: sqlite3.Row, sender: str) -> int:
    ours = ch["opener_msat"] if ch["opener"] == sender else ch["total_msat"] - ch["opener_msat"]
    return max(0, int(ours) - reserve_msat(int(ch["total_msat"])))


def _best_channel(db: sqlite3.Connection, a: str, b: str) -> sqlite3.Row | None:
    rows = db.execute(
        "SELECT * FROM channels WHERE state = 'CHANNELD_NORMAL' AND "
        "((opener = ? AND peer = ?) OR (opener = ? AND peer = ?))",
        (a, b, b, a),
    ).fetchall()
    return max(rows, key=lambda ch: _spendable(ch, a), default=None)


def _no_route(db: sqlite3.Connection, payer: str) -> RpcFailure:
    rows = db.execute(
        "SELECT * FROM channels WHERE state = 'CHANNELD_NORMAL' AND (opener = ? OR peer = ?)",
        (payer, payer),
    ).fetchall()
    capacity = sum(_spendable(ch, payer) for ch in rows)
    return RpcFailure(
        PAY_ROUTE_NOT_FOUND,
        "Failed: We could not find a usable set of paths. "
        f"Total source capacity is only {capacity}msat (in {len(rows)} channels).",
    )


def find_route(
    db: sqlite3.Connection, net: Network, payer: str, payee: str, amount_msat: int
) -> tuple[list[Hop], int]:
    """Hops and total fee: a direct channel, else one hop through a hosted node."""
    if payer == payee:
        return [], 0
    direct = _best_channel(db, payer, payee)
    if direct is not None and _spendable(direct, payer) >= amount_msat:
        return [(direct["id"], payer, amount_msat)], 0
    fee = hop_fee_msat(amount_msat)
    for middle in net.nodes:
        if middle in (payer, payee):
            continue
        first, second = _best_channel(db, payer, middle), _best_channel(db, middle, payee)
        if (
            first is not None and second is not None
            and _spendable(first, payer) >= amount_msat + fee
            and _spendable(second, middle) >= amount_msat
        ):
            return [(first["id"], payer, amount_msat + fee), (second["id"], middle, amount_msat)], fee
    raise _no_route(db, payer)


def _apply(db: sqlite3.Connection, hops: list[Hop], fee_msat: int) -> None:
    for channel_id, sender, amount in hops:
        db.execute(
            "UPDATE channels SET opener_msat = opener_msat + "
            "CASE WHEN opener = ? THEN -? ELSE ? END WHERE id = ?",
            (sender, amount, amount, channel_id),
        )
    if len(hops) == 2:
        db.execute(
            "UPDATE nodes SET fees_collected_msat = fees_collected_msat + ? WHERE name = ?",
            (fee_msat, hops[1][1]),
        )


def _settle(
    db: sqlite3.Connection,
    net: Network,
    payer: HostedNode,
    invoice: dict[str, Any],
    amount_msat: int,
    maxfee_msat: int | None,
    too_expensive_code: int,
) -> Json:
    """Move the money and record both sides; returns the payer's sendpay row."""
    hops, fee = find_route(db, net, payer.name, invoice["node"], amount_msat)
    if maxfee_msat is not None and fee > maxfee_msat:
        raise RpcFailure(
            too_expensive_code,
            f"Failed: We could not find a usable set of paths. Fee {fee}msat exceeds maxfee {maxfee_msat}msat.",
        )
    _apply(db, hops, fee)
    moment = now()
    pay_index = net.store.bump(db, invoice["node"], "pay_index")
    updated = net.store.bump(db, invoice["node"], "invoices_updated")
    db.execute(
        "UPDATE invoices SET status = 'paid', pay_index = ?, updated_index = ?, "
        "amount_received_msat = ?, paid_at = ? WHERE node = ? AND created_index = ?",
        (pay_index, updated, amount_msat, moment, invoice["node"], invoice["created_index"]),
    )
    payee = net.nodes[invoice["node"]]
    sendpay = {
        "node": payer.name,
        "created_index": net.store.bump(db, payer.name, "sendpays_created"),
        "updated_index": net.store.bump(db, payer.name, "sendpays_updated"),
        "payment_hash": invoice["payment_hash"],
        "groupid": int.from_bytes(os.urandom(8), "big") >> 1,
        "destination": payee.node_id,
        "amount_msat": amount_msat,
        "amount_sent_msat": amount_msat + fee,
        "created_at": moment,
        "completed_at": moment,
        "status": "complete",
        "preimage": invoice["preimage"],
        "bolt11": invoice.get("bolt11_for_payer", invoice["bolt11"]),
        "label": None,
    }
    db.execute(
        "INSERT INTO payments VALUES (:node, :created_index, :updated_index, :payment_hash, "
        ":groupid, :destination, :amount_msat, :amount_sent_msat, :created_at, :completed_at, "
        ":status, :preimage, :bolt11, :label)",
        sendpay,
    )
    return sendpay


def _find_invoice(net: Network, invstring: str, name: str) -> dict[str, Any]:
    text = invstring.strip().lower()
    row = net.store.one("SELECT * FROM invoices WHERE bolt11 = ?", (text,))
    if row is not None:
        return row
    # Not one of ours: decode it to say why it cannot be paid.
    try:
        decoded = issuer.decode_reply(text)
    except ValueError:
        raise RpcFailure(INVALID_PARAMS, f"{name}: Invalid bolt11: invalid token (see logs for details)") from None
    if decoded["currency"] != CURRENCY:
        raise RpcFailure(INVALID_PARAMS, f"{name}: Invoice is for another network {decoded['currency']}")
    if net.by_id(decoded["payee"]) is not None:
        raise RpcFailure(
            PAY_DESTINATION_PERM_FAIL,
            "Destination said it doesn't know invoice: incorrect_or_unknown_payment_details",
        )
    expires_at = decoded["created_at"] + decoded["expiry"]
    if expires_at <= now():
        raise RpcFailure(PAY_INVOICE_EXPIRED, f"Invoice expired {now() - expires_at} seconds ago")
    raise RpcFailure(
        PAY_ROUTE_NOT_FOUND,
        f"Failed: We could not find a usable set of paths. Unknown destination {decoded['payee']}",
    )


def _amount(invoice: dict[str, Any], args: Json) -> int:
    if invoice["amount_msat"] is not None:
        if "amount_msat" in args:
            raise RpcFailure(INVALID_PARAMS, "amount_msat unnecessary")
        return int(invoice["amount_msat"])
    if "amount_msat" not in args:
        raise RpcFailure(INVALID_PARAMS, "amount_msat required")
    return int(args["amount_msat"])


def _pay_common(
    net: Network, payer: HostedNode, args: Json, invstring: str, name: str, is_xpay: bool
) -> tuple[Json, bool]:
    """Settle (or find the earlier settlement); True when it was already paid by us."""
    invoice = _find_invoice(net, invstring, name)
    amount_msat = _amount(invoice, args)
    maxfee = args.get("maxfee")
    with net.store.transaction() as db:
        earlier = db.execute(
            "SELECT * FROM payments WHERE node = ? AND payment_hash = ? AND status = 'complete'",
            (payer.name, invoice["payment_hash"]),
        ).fetchone()
        if earlier is not None:
            if is_xpay:
                raise RpcFailure(PAY_INJECTPAYMENTONION_ALREADY_PAID, "Already paid this invoice successfully")
            return dict(earlier), True
        current = db.execute(
            "SELECT * FROM invoices WHERE node = ? AND created_index = ?",
            (invoice["node"], invoice["created_index"]),
        ).fetchone()
        if current is None or current["status"] == "paid":
            raise RpcFailure(
                PAY_DESTINATION_PERM_FAIL,
                "Destination said it doesn't know invoice: incorrect_or_unknown_payment_details",
            )
        if current["expires_at"] <= now():
            raise RpcFailure(
                PAY_INVOICE_EXPIRED, f"Invoice expired {now() - current['expires_at']} seconds ago"
            )
        code = PAY_ROUTE_NOT_FOUND if is_xpay else PAY_ROUTE_TOO_EXPENSIVE
        return _settle(db, net, payer, dict(current), amount_msat, maxfee, code), False


XPAY_PARAMS: p.Spec = (
    ["invstring", "amount_msat", "maxfee", "layers", "retry_for", "partial_msat", "maxdelay",
     "payer_note", "label", "localinvreqid", "dev_use_shadow"],
    {"invstring"},
    {"invstring": p.string, "amount_msat": p.msat, "maxfee": p.msat, "retry_for": p.u64,
     "partial_msat": p.msat, "maxdelay": p.u64},
)


def xpay(net: Network, node: HostedNode, args: Json) -> Json:
    sendpay, _ = _pay_common(net, node, args, args["invstring"], "invstring", is_xpay=True)
    return {
        "payment_preimage": sendpay["preimage"],
        "amount_msat": sendpay["amount_msat"],
        "amount_sent_msat": sendpay["amount_sent_msat"],
        "failed_parts": 0,
        "successful_parts": 1,
    }


PAY_PARAMS: p.Spec = (
    ["bolt11", "amount_msat", "label", "riskfactor", "maxfeepercent", "retry_for", "maxdelay",
     "exemptfee", "localinvreqid", "exclude", "maxfee", "description", "partial_msat"],
    {"bolt11"},
    {"bolt11": p.string, "amount_msat": p.msat, "maxfee": p.msat, "exemptfee": p.msat,
     "retry_for": p.u64, "maxdelay": p.u64, "label": p.string, "partial_msat": p.msat,
     "description": p.string},
)


def _pay_reply(sendpay: Json) -> Json:
    return {
        "destination": sendpay["destination"],
        "payment_hash": sendpay["payment_hash"],
        "created_at": float(sendpay["created_at"]),
        "parts": 1,
        "amount_msat": sendpay["amount_msat"],
        "amount_sent_msat": sendpay["amount_sent_msat"],
        "payment_preimage": sendpay["preimage"],
        "status": "complete",
    }


def _check_description(invoice: dict[str, Any], description: str | None) -> None:
    """CLN's `pay` (BOLT 11): an invoice committing only to a description hash is paid only with a
    description that hashes to it (LNURL-pay wallets send the metadata); otherwise a description is ignored."""
    decoded = issuer.decode_reply(invoice["bolt11"])
    committed = decoded.get("description_hash")
    if committed is None:
        return
    if description is None:
        if decoded.get("description") is None:
            raise RpcFailure(INVALID_PARAMS,
                             "bolt11 uses description_hash, but you did not provide description parameter")
        return
    if hashlib.sha256(description.encode()).hexdigest() != committed:
        raise RpcFailure(INVALID_PARAMS, "Invalid bolt11: h: does not match description")


def pay(net: Network, node: HostedNode, args: Json) -> Json:
    invoice = _find_invoice(net, args["bolt11"], "bolt11")
    _check_description(invoice, args.get("description"))
    # Like CLN, paying an invoice already paid answers success again.
    sendpay, _ = _pay_common(net, node, args, args["bolt11"], "bolt11", is_xpay=False)
    return _pay_reply(sendpay)


KEYSEND_PARAMS: p.Spec = (
    ["destination", "amount_msat", "label", "maxfeepercent", "retry_for", "maxdelay",
     "exemptfee", "extratlvs", "routehints", "maxfee"],
    {"destination", "amount_msat"},
    {"destination": p.pubkey, "amount_msat": p.msat, "maxfee": p.msat},
)


def keysend(net: Network, node: HostedNode, args: Json) -> Json:
    return _pay_reply(_keysend(net, node, args))


# xkeysend (v24.11+) is keysend through xpay: the replacement a node in developer mode, where
# deprecated commands such as keysend are off, accepts; its reply has xpay's shape.
XKEYSEND_PARAMS: p.Spec = (
    ["destination", "amount_msat", "maxfee", "layers", "maxdelay", "extratlvs"],
    {"destination", "amount_msat"},
    {"destination": p.pubkey, "amount_msat": p.msat, "maxfee": p.msat, "maxdelay": p.u64},
)


def xkeysend(net: Network, node: HostedNode, args: Json) -> Json:
    sendpay = _keysend(net, node, args)
    return {
        "payment_preimage": sendpay["preimage"],
        "amount_msat": sendpay["amount_msat"],
        "amount_sent_msat": sendpay["amount_sent_msat"],
        "failed_parts": 0,
        "successful_parts": 1,
    }


def _keysend(net: Network, node: HostedNode, args: Json) -> Json:
    payee = net.by_id(args["destination"])
    if payee is None:
        raise RpcFailure(PAY_ROUTE_NOT_FOUND, "Failed: We could not find a usable set of paths. Unknown destination")
    # The receiver records a keysend as a paid amountless invoice of its own.
    label = f"keysend-{time.time_ns() / 1e9:.9f}"
    prepared = prepare_invoice(
        payee, label=label, amount_msat=None, description="keysend",
        expiry_s=DEFAULT_EXPIRY_S, preimage=random_hex(),
    )
    with net.store.transaction() as db:
        row = insert_invoice(db, net, prepared)
        row["bolt11_for_payer"] = None
        sendpay = _settle(db, net, node, row, args["amount_msat"], args.get("maxfee"), PAY_ROUTE_NOT_FOUND)
    return sendpay


LIST_PARAMS: p.Spec = (
    ["bolt11", "payment_hash", "status", "index", "start", "limit"],
    set(),
    {"bolt11": p.string, "payment_hash": p.hex32, "status": p.one_of("pending", "complete", "failed"),
     "index": p.one_of("created", "updated"), "start": p.u64, "limit": p.u64},
)


def _payments(net: Network, node: HostedNode, args: Json) -> list[dict[str, Any]]:
    where, values = ["node = ?"], [node.name]
    for key, column in (("bolt11", "bolt11"), ("payment_hash", "payment_hash"), ("status", "status")):
        if key in args:
            where.append(f"{column} = ?")
            values.append(args[key])
    order = "created_index"
    if "index" in args:
        order = "updated_index" if args["index"] == "updated" else "created_index"
        where.append(f"{order} >= ?")
        values.append(args.get("start", 0))
    sql = f"SELECT * FROM payments WHERE {' AND '.join(where)} ORDER BY {order}"
    if "limit" in args:
        sql += f" LIMIT {int(args['limit'])}"
    return net.store.all(sql, tuple(values))


def listpays(net: Network, node: HostedNode, args: Json) -> Json:
    pays = []
    for row in _payments(net, node, args):
        item: Json = {}
        if row["bolt11"]:
            item["bolt11"] = row["bolt11"]
        item.update(destination=row["destination"], payment_hash=row["payment_hash"],
                    status=row["status"], created_at=row["created_at"])
        if row["status"] == "complete":
            item["completed_at"] = row["completed_at"]
            item["preimage"] = row["preimage"]
        item.update(amount_msat=row["amount_msat"], amount_sent_msat=row["amount_sent_msat"],
                    created_index=row["created_index"], updated_index=row["updated_index"])
        pays.append(item)
    return {"pays": pays}


def listsendpays(net: Network, node: HostedNode, args: Json) -> Json:
    payments = []
    for row in _payments(net, node, args):
        item: Json = {
            "created_index": row["created_index"], "id": row["created_index"],
            "payment_hash": row["payment_hash"], "groupid": row["groupid"],
            "updated_index": row["updated_index"], "partid": 1,
            "destination": row["destination"], "amount_msat": row["amount_msat"],
            "amount_sent_msat": row["amount_sent_msat"], "created_at": row["created_at"],
        }
        if row["completed_at"] is not None:
            item["completed_at"] = row["completed_at"]
        item["status"] = row["status"]
        if row["status"] == "complete":
            item["payment_preimage"] = row["preimage"]
        if row["bolt11"]:
            item["bolt11"] = row["bolt11"]
        payments.append(item)
    return {"payments": payments}
