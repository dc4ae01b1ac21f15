"""Turn CLN JSON replies into the port's frozen result types.

Kept apart from the adapter so the field knowledge (which keys are optional,
which are warnings) lives in one place and is unit-testable on transcripts.

Every reader checks what it takes: a reply with a missing field, a wrong
type or an impossible value (a paid invoice whose preimage does not hash to
its payment hash, a negative amount, an index beyond what the database can
hold) raises `MalformedReply`, never KeyError or TypeError, and never turns
into a value the ledger would act on.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from lightning.errors import MalformedReply
from lightning.port import (
    Channel,
    ChannelClosed,
    ChannelFunds,
    ChannelOpened,
    CreatedInvoice,
    CreatedOffer,
    DecodedPayment,
    Funds,
    InvoiceStatus,
    InvoiceUpdate,
    NodeInfo,
    OnchainOutput,
    PaymentResult,
    PaymentState,
    PaymentStatus,
)

Json = dict[str, Any]

# Indexes, amounts and timestamps end up in signed 64-bit database columns.
INT_MAX = 2**63 - 1
_HEX32 = re.compile(r"[0-9a-f]{64}")
_MSAT_TEXT = re.compile(r"(\d{1,19})msat")


def _obj(value: Any, what: str) -> Json:
    if not isinstance(value, dict):
        raise MalformedReply(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(reply: Json, key: str, what: str) -> list[Any]:
    value = reply.get(key)
    if not isinstance(value, list):
        raise MalformedReply(f"{what}: '{key}' should be a list")
    return value


def _int(reply: Json, key: str, what: str, *, minimum: int = 0) -> int:
    value = reply.get(key)
    if isinstance(value, str):  # CLN before v23.05 wrote amounts as "123msat"
        match = _MSAT_TEXT.fullmatch(value) if key.endswith("_msat") else None
        value = int(match.group(1)) if match else value
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedReply(f"{what}: '{key}' should be a whole number, got {value!r:.40}")
    if not minimum <= value <= INT_MAX:
        raise MalformedReply(f"{what}: '{key}' is out of range ({value})")
    return value


def _opt_int(reply: Json, key: str, what: str, *, minimum: int = 0) -> int | None:
    return None if reply.get(key) is None else _int(reply, key, what, minimum=minimum)


def _str(reply: Json, key: str, what: str) -> str:
    value = reply.get(key)
    if not isinstance(value, str):
        raise MalformedReply(f"{what}: '{key}' should be text, got {value!r:.40}")
    return value


def _opt_str(reply: Json, key: str, what: str) -> str | None:
    return None if reply.get(key) is None else _str(reply, key, what)


def _hex32(reply: Json, key: str, what: str) -> str:
    value = _str(reply, key, what).lower()
    if not _HEX32.fullmatch(value):
        raise MalformedReply(f"{what}: '{key}' should be 32 bytes of hex")
    return value


def _opt_hex32(reply: Json, key: str, what: str) -> str | None:
    return None if reply.get(key) is None else _hex32(reply, key, what)


def preimage_matches(preimage: str, payment_hash: str) -> bool:
    return hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment_hash


def _warnings(reply: Json) -> tuple[str, ...]:
    return tuple(f"{key}: {value}" for key, value in reply.items() if str(key).startswith("warning_"))


def created_invoice(label: str, reply: Any) -> CreatedInvoice:
    what = "invoice reply"
    body = _obj(reply, what)
    return CreatedInvoice(
        label=label,
        payment_hash=_hex32(body, "payment_hash", what),
        bolt11=_str(body, "bolt11", what),
        payment_secret=_hex32(body, "payment_secret", what),
        expires_at=_int(body, "expires_at", what),
        created_index=_int(body, "created_index", what),
        warnings=_warnings(body),
    )


def invoice(reply: Any) -> InvoiceUpdate:
    """One invoice of listinvoices/waitanyinvoice. A paid one must carry its proof (the preimage)."""
    what = "invoice"
    body = _obj(reply, what)
    raw_status = body.get("status")
    if raw_status not in ("unpaid", "paid", "expired"):
        raise MalformedReply(f"{what}: unknown status {raw_status!r:.40}")
    status = InvoiceStatus(raw_status)
    update = InvoiceUpdate(
        label=_str(body, "label", what),
        payment_hash=_hex32(body, "payment_hash", what),
        status=status,
        amount_msat=_opt_int(body, "amount_msat", what),
        bolt11=_opt_str(body, "bolt11", what),
        description=_opt_str(body, "description", what),
        expires_at=_int(body, "expires_at", what),
        created_index=_int(body, "created_index", what),
        updated_index=_opt_int(body, "updated_index", what),
        pay_index=_opt_int(body, "pay_index", what, minimum=1),
        amount_received_msat=_opt_int(body, "amount_received_msat", what),
        paid_at=_opt_int(body, "paid_at", what),
        payment_preimage=_opt_hex32(body, "payment_preimage", what),
        local_offer_id=_opt_hex32(body, "local_offer_id", what),
    )
    if status is InvoiceStatus.PAID:
        _check_paid(update, what)
    return update


def _check_paid(update: InvoiceUpdate, what: str) -> None:
    if update.pay_index is None or update.amount_received_msat is None or update.paid_at is None:
        raise MalformedReply(f"{what}: a paid invoice needs pay_index, amount_received_msat and paid_at")
    if update.payment_preimage is None or not preimage_matches(update.payment_preimage, update.payment_hash):
        raise MalformedReply(f"{what}: a paid invoice's preimage must hash to its payment_hash")
    if update.amount_msat is not None and update.amount_received_msat < update.amount_msat:
        raise MalformedReply(f"{what}: received {update.amount_received_msat} msat, less than its amount")


def invoices(reply: Any, *, updated_from: int | None = None) -> list[InvoiceUpdate]:
    """listinvoices' `invoices`; paged by `updated`, every item must be at or past the start."""
    what = "listinvoices reply"
    items = [invoice(item) for item in _list(_obj(reply, what), "invoices", what)]
    if updated_from is not None:
        for item in items:
            if item.updated_index is None or item.updated_index < updated_from:
                raise MalformedReply(f"{what}: an invoice before the requested updated_index {updated_from}")
    return items


def paid_after(reply: Any, after_pay_index: int) -> InvoiceUpdate:
    """waitanyinvoice's answer: a paid invoice newer than the cursor, nothing else."""
    update = invoice(reply)
    if update.status is not InvoiceStatus.PAID or update.pay_index is None or update.pay_index <= after_pay_index:
        raise MalformedReply(f"waitanyinvoice reply: not a payment after pay_index {after_pay_index}")
    return update


def wait_value(reply: Any, default: int) -> int:
    body = _obj(reply, "wait reply")
    return default if body.get("updated") is None else _int(body, "updated", "wait reply")


def payment_result(reply: Any) -> PaymentResult:
    """xpay's (or pay's) success; the hash comes from the preimage when the reply has none."""
    what = "payment reply"
    body = _obj(reply, what)
    preimage = _hex32(body, "payment_preimage", what)
    derived = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    stated = _opt_hex32(body, "payment_hash", what)
    if stated is not None and stated != derived:
        raise MalformedReply(f"{what}: the preimage does not hash to the payment_hash")
    amount = _int(body, "amount_msat", what)
    sent = _int(body, "amount_sent_msat", what)
    if sent < amount:
        raise MalformedReply(f"{what}: sent {sent} msat, less than the amount {amount}")
    return PaymentResult(payment_hash=derived, payment_preimage=preimage, amount_msat=amount, amount_sent_msat=sent)


def payment_status(payment_hash: str, reply: Any) -> PaymentStatus:
    """listpays for one hash: complete wins, then pending; only failed attempts is failed; none is unknown."""
    what = "listpays reply"
    pays = [_obj(p, what) for p in _list(_obj(reply, what), "pays", what)]
    for pay in pays:
        if _hex32(pay, "payment_hash", what) != payment_hash:
            raise MalformedReply(f"{what}: a payment for another hash")
        if pay.get("status") not in ("pending", "complete", "failed"):
            raise MalformedReply(f"{what}: unknown status {pay.get('status')!r:.40}")
    complete = [p for p in pays if p["status"] == "complete"]
    if complete:
        pay = complete[0]
        preimage = _hex32(pay, "preimage", what)
        if not preimage_matches(preimage, payment_hash):
            raise MalformedReply(f"{what}: a complete payment's preimage does not hash to its payment_hash")
        amount = _opt_int(pay, "amount_msat", what)
        sent = _opt_int(pay, "amount_sent_msat", what)
        if amount is not None and sent is not None and sent < amount:
            raise MalformedReply(f"{what}: sent less than the amount")
        return PaymentStatus(payment_hash=payment_hash, state=PaymentState.COMPLETE, amount_msat=amount,
                             amount_sent_msat=sent, payment_preimage=preimage)
    if any(p["status"] == "pending" for p in pays):
        return PaymentStatus(payment_hash=payment_hash, state=PaymentState.PENDING)
    if pays:
        return PaymentStatus(payment_hash=payment_hash, state=PaymentState.FAILED)
    # Nothing recorded: after a crash the attempt may never have reached
    # the node, or the node may have lost it. Not a failure.
    return PaymentStatus(payment_hash=payment_hash, state=PaymentState.UNKNOWN)


def decoded(reply: Any) -> DecodedPayment:
    what = "decode reply"
    body = _obj(reply, what)
    return DecodedPayment(
        currency=_opt_str(body, "currency", what) or "",
        payee=_opt_str(body, "payee", what) or "",
        payment_hash=_opt_str(body, "payment_hash", what) or "",
        amount_msat=_opt_int(body, "amount_msat", what),
        created_at=_opt_int(body, "created_at", what) or 0,
        expiry=3600 if body.get("expiry") is None else _int(body, "expiry", what),
        description=_opt_str(body, "description", what),
        valid=body.get("valid") is True,
        description_hash=None if body.get("description_hash") is None else _hex32(body, "description_hash", what),
    )


def node_info(reply: Any) -> NodeInfo:
    what = "getinfo reply"
    body = _obj(reply, what)
    return NodeInfo(
        id=_str(body, "id", what),
        alias=_opt_str(body, "alias", what) or "",
        network=_str(body, "network", what),
        blockheight=_int(body, "blockheight", what),
        version=_str(body, "version", what),
        warnings=_warnings(body),
    )


def channel(reply: Any) -> Channel:
    what = "listpeerchannels reply"
    body = _obj(reply, what)

    def amount(key: str) -> int:
        return _opt_int(body, key, what) or 0

    return Channel(
        peer_id=_str(body, "peer_id", what),
        short_channel_id=_opt_str(body, "short_channel_id", what),
        state=_str(body, "state", what),
        total_msat=amount("total_msat"),
        to_us_msat=amount("to_us_msat"),
        spendable_msat=amount("spendable_msat"),
        receivable_msat=amount("receivable_msat"),
    )


def channels(reply: Any) -> list[Channel]:
    return [channel(c) for c in _list(_obj(reply, "listpeerchannels reply"), "channels", "listpeerchannels reply")]


def funds(reply: Any) -> Funds:
    what = "listfunds reply"
    body = _obj(reply, what)
    outputs = tuple(
        OnchainOutput(
            txid=_str(o, "txid", what),
            output=_int(o, "output", what),
            amount_msat=_int(o, "amount_msat", what),
            status=_str(o, "status", what),
        )
        for o in (_obj(x, what) for x in (body.get("outputs") or []))
    ) if isinstance(body.get("outputs") or [], list) else _bad(what, "outputs")
    channels_ = tuple(
        ChannelFunds(
            peer_id=_str(c, "peer_id", what),
            state=_str(c, "state", what),
            our_amount_msat=_int(c, "our_amount_msat", what),
            amount_msat=_int(c, "amount_msat", what),
        )
        for c in (_obj(x, what) for x in (body.get("channels") or []))
    ) if isinstance(body.get("channels") or [], list) else _bad(what, "channels")
    return Funds(outputs=outputs, channels=channels_)


def channel_opened(reply: Any) -> ChannelOpened:
    what = "fundchannel reply"
    body = _obj(reply, what)
    return ChannelOpened(channel_id=_str(body, "channel_id", what), txid=_str(body, "txid", what),
                         outnum=_int(body, "outnum", what))


def channel_closed(reply: Any) -> ChannelClosed:
    what = "close reply"
    body = _obj(reply, what)
    txids = body.get("txids") or []
    if not isinstance(txids, list) or not all(isinstance(t, str) for t in txids):
        raise MalformedReply(f"{what}: 'txids' should be a list of text")
    return ChannelClosed(type=_str(body, "type", what), txids=tuple(txids))


def _bad(what: str, key: str) -> Any:
    raise MalformedReply(f"{what}: '{key}' should be a list")


def version_tuple(version: str) -> tuple[int, int]:
    """'v24.11.1-modded' -> (24, 11); unparsable versions count as new."""
    core = str(version).lstrip("v").split("-")[0]
    parts = core.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (99, 0)


def created_offer(reply: Any) -> CreatedOffer:
    body = _obj(reply, "offer reply")
    bolt12 = _str(body, "bolt12", "offer reply")
    if not bolt12.startswith("lno1"):
        raise MalformedReply("offer reply: bolt12 is not an offer (lno1...)")
    return CreatedOffer(offer_id=_hex32(body, "offer_id", "offer reply"), bolt12=bolt12)
