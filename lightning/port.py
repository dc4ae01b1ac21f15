"""The Lightning port: the one interface the rest of Microlend uses.

Amounts are integer millisatoshis, times are UNIX seconds. Result types are
frozen so a value read from the node cannot be changed on its way to the
ledger.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class InvoiceStatus(str, enum.Enum):
    UNPAID = "unpaid"
    PAID = "paid"
    EXPIRED = "expired"


class PaymentState(str, enum.Enum):
    """An outgoing payment's fate. UNKNOWN is never a failure: reconcile it."""

    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CreatedInvoice:
    label: str
    payment_hash: str
    bolt11: str
    payment_secret: str
    expires_at: int
    created_index: int
    # Liquidity warnings (warning_capacity, warning_deadends, ...) for the operator.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class InvoiceUpdate:
    """One invoice as `listinvoices`/`waitanyinvoice` report it.

    `amount_msat` is None for amountless invoices and keysend receipts;
    the paid-only fields are None until the invoice is paid.
    """

    label: str
    payment_hash: str
    status: InvoiceStatus
    amount_msat: int | None
    bolt11: str | None
    description: str | None
    expires_at: int
    created_index: int
    updated_index: int | None
    pay_index: int | None = None
    amount_received_msat: int | None = None
    paid_at: int | None = None
    payment_preimage: str | None = None
    # A BOLT12 invoice made for one of our offers carries the offer's id (`local_offer_id`).
    local_offer_id: str | None = None


# A paid invoice is the same record with the paid fields present.
PaidInvoice = InvoiceUpdate


@dataclass(frozen=True)
class InvoicePage:
    invoices: tuple[InvoiceUpdate, ...]


@dataclass(frozen=True)
class PaymentResult:
    """A payment that succeeded: the preimage is the proof."""

    payment_hash: str
    payment_preimage: str
    amount_msat: int
    amount_sent_msat: int

    @property
    def fee_msat(self) -> int:
        return self.amount_sent_msat - self.amount_msat


@dataclass(frozen=True)
class PaymentStatus:
    payment_hash: str
    state: PaymentState
    amount_msat: int | None = None
    amount_sent_msat: int | None = None
    payment_preimage: str | None = None


@dataclass(frozen=True)
class DecodedPayment:
    """What the node says about a BOLT11 string (`decode`)."""

    currency: str
    payee: str
    payment_hash: str
    amount_msat: int | None
    created_at: int
    expiry: int
    description: str | None
    valid: bool
    # Hex SHA-256 the invoice commits to instead of a description (`h` field), if it has one.
    description_hash: str | None = None

    @property
    def expires_at(self) -> int:
        return self.created_at + self.expiry


@dataclass(frozen=True)
class CreatedOffer:
    """A reusable BOLT12 offer (`lno1...`) the node answers invoice requests for."""

    offer_id: str
    bolt12: str


@dataclass(frozen=True)
class NodeInfo:
    id: str
    alias: str
    network: str
    blockheight: int
    version: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Channel:
    peer_id: str
    short_channel_id: str | None
    state: str
    total_msat: int
    to_us_msat: int
    spendable_msat: int
    receivable_msat: int

    @property
    def usable(self) -> bool:
        return self.state == "CHANNELD_NORMAL"


@dataclass(frozen=True)
class OnchainOutput:
    txid: str
    output: int
    amount_msat: int
    status: str


@dataclass(frozen=True)
class ChannelFunds:
    peer_id: str
    state: str
    our_amount_msat: int
    amount_msat: int


@dataclass(frozen=True)
class Funds:
    outputs: tuple[OnchainOutput, ...] = field(default_factory=tuple)
    channels: tuple[ChannelFunds, ...] = field(default_factory=tuple)

    @property
    def onchain_msat(self) -> int:
        return sum(o.amount_msat for o in self.outputs if o.status == "confirmed")


@dataclass(frozen=True)
class ChannelOpened:
    channel_id: str
    txid: str
    outnum: int


@dataclass(frozen=True)
class ChannelClosed:
    type: str
    txids: tuple[str, ...] = ()


@runtime_checkable
class LightningPort(Protocol):
    """Everything Microlend asks of a Lightning node."""

    async def create_invoice(
        self, amount_msat: int, label: str, description: str, expiry_s: int, *, deschashonly: bool = False
    ) -> CreatedInvoice:
        """`deschashonly`: the BOLT11 commits to SHA-256 of `description` (`h`) instead of carrying it (LNURL-pay)."""
        ...

    async def wait_any_paid(
        self, after_pay_index: int, timeout_s: int | None
    ) -> PaidInvoice | None:
        """The first paid invoice with pay_index > after_pay_index; None on timeout."""
        ...

    async def list_paid_since(self, updated_index: int, limit: int) -> list[InvoiceUpdate]:
        """A page of invoice changes with updated_index >= `updated_index`
        (paid and expired both count; the caller filters)."""
        ...

    async def wait_updated(self, next_value: int, timeout_s: float | None) -> int | None:
        """Block until the invoices `updated` index reaches next_value; its value, or None on timeout."""
        ...

    async def lookup_invoice(self, label: str) -> InvoiceUpdate | None: ...

    async def create_offer(self, description: str, label: str) -> CreatedOffer:
        """An any-amount BOLT12 offer. Making the same offer again answers the existing one (CLN's `offer`
        is idempotent by content); UnknownCommand where the node has no offers (the dev node)."""
        ...

    async def cancel_invoice(self, label: str) -> InvoiceStatus | None:
        """Delete an unpaid invoice at the node (`delinvoice` with status unpaid), so nobody can pay it any more.

        None: it is gone (deleted now, or the node never had it). Otherwise the status it has instead
        (paid: the money arrived; expired: nobody can pay it anyway)."""
        ...

    async def list_invoices(
        self, status: InvoiceStatus | None = None, start: int = 0, limit: int | None = None
    ) -> list[InvoiceUpdate]:
        """Invoices in created order from created_index `start`, optionally of one status."""
        ...

    async def pay(
        self, bolt11: str, amount_msat: int | None, maxfee_msat: int, retry_for_s: int
    ) -> PaymentResult: ...

    async def payment_status(self, payment_hash: str) -> PaymentStatus: ...

    async def decode(self, bolt11: str) -> DecodedPayment: ...

    async def node_info(self) -> NodeInfo: ...

    async def channels(self) -> list[Channel]: ...

    async def funds(self) -> Funds: ...

    async def connect(self, peer_id: str, host: str | None, port: int | None) -> None: ...

    async def open_channel(self, peer_id: str, amount_sat: int) -> ChannelOpened: ...

    async def close_channel(self, peer_id_or_scid: str) -> ChannelClosed: ...
