"""Typed Lightning errors, mapped from Core Lightning's numeric error codes.

Services catch these classes, never RpcError: the mapping is by code (see
common/jsonrpc_errors.h) because CLN's messages change between versions and
modes ("invalid token (see logs for details)" vs the echoed token).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def N_(msgid: str) -> str:
    """Marks a sentence for the marketplace's translation catalog (babel extracts `N_`); returns it as is."""
    return msgid


class LightningError(Exception):
    """Base of every error the Lightning layer raises.

    `code` is the CLN error code when the node answered with one (None for
    local checks and transport failures); `data` is CLN's optional payload.
    `message` is the English; a sentence marked with `N_` keeps its id in
    `msgid` and its values in `params` (for %(name)s), so a reader's language
    can be put in after translation.
    """

    def __init__(self, message: str, code: int | None = None, data: Any = None, *,
                 params: Mapping[str, object] | None = None) -> None:
        self.msgid = message
        self.params = params
        self.message = message % dict(params) if params is not None else message
        super().__init__(self.message)
        self.code = code
        self.data = data


class NodeUnreachable(LightningError):
    """The node's socket is missing, refused the connection, or dropped it."""


class NodeNotReached(NodeUnreachable):
    """The connection was never made (no socket, or refused): the request provably never reached the node.

    Unlike a connection dropped mid-call, this is a clear failure even for a payment.
    """


class MalformedReply(LightningError):
    """The node answered something that is not a valid reply to the call (wrong types, missing
    fields, impossible values). For a payment this is not a failure: the request did reach the node."""


class InvalidParams(LightningError):
    """The node rejected the request's parameters (-32602)."""


class UnknownCommand(LightningError):
    """The node does not know this method (-32601), e.g. `decodepay` since v24.11."""


class InvoiceError(LightningError):
    """Base of errors about receiving invoices."""


class DuplicateLabel(InvoiceError):
    """An invoice with this label already exists (900)."""


class DuplicatePreimage(InvoiceError):
    """An invoice with this preimage already exists (901)."""


class InvoiceExpired(InvoiceError):
    """The invoice expired: while waiting on it (903) or before paying it (xpay/pay 207)."""


class WaitTimeout(InvoiceError):
    """Nothing was paid before the timeout (904)."""


class InvoiceNotFound(InvoiceError):
    """No invoice with this label (-1 from waitinvoice, 905 from delinvoice)."""


class InvoiceStatusUnexpected(InvoiceError):
    """The invoice is not in the status the call required (906)."""


class PaymentError(LightningError):
    """Base of errors about sending payments."""


class PaymentPending(PaymentError):
    """A payment for this hash is already in flight (200): outcome unknown."""


class PaymentInProgress(PaymentError):
    """`pay` error 201: already paid OR still pending. Never a failure: reconcile."""


class AlreadyPaid(PaymentError):
    """xpay error 219: this invoice was already paid successfully; the money went."""


class NoRoute(PaymentError):
    """No usable route or not enough outbound liquidity (205); nothing was sent."""


class PaymentFailed(PaymentError):
    """A terminal failure (203, 206, 209, 210, ...): nothing was delivered."""


class FundingError(LightningError):
    """Opening a channel failed (300-314)."""


class ConnectError(LightningError):
    """Connecting to a peer failed (400-402)."""


class NodeError(LightningError):
    """Any other error the node reported (-1 and unmapped codes)."""


_BY_CODE: dict[int, type[LightningError]] = {
    -32601: UnknownCommand,
    -32602: InvalidParams,
    200: PaymentPending,
    201: PaymentInProgress,
    203: PaymentFailed,
    205: NoRoute,
    206: PaymentFailed,
    207: InvoiceExpired,
    209: PaymentFailed,
    210: PaymentFailed,
    215: NoRoute,
    216: NoRoute,
    219: AlreadyPaid,
    220: NoRoute,
    900: DuplicateLabel,
    901: DuplicatePreimage,
    903: InvoiceExpired,
    904: WaitTimeout,
    905: InvoiceNotFound,
    906: InvoiceStatusUnexpected,
}


def error_for_code(code: int, message: str, data: Any = None, method: str = "") -> LightningError:
    """Build the typed exception for a CLN error code.

    `method` disambiguates the one code CLN reuses: -1 from `waitinvoice`
    means the label is unknown, elsewhere it is a generic failure.
    """
    cls = _BY_CODE.get(code)
    if cls is None:
        if code == -1 and method == "waitinvoice":
            cls = InvoiceNotFound
        elif 300 <= code < 400:
            cls = FundingError
        elif 400 <= code < 500:
            cls = ConnectError
        elif 200 <= code < 300:
            # Unknown pay codes stay "failed" only where CLN documents them as
            # terminal; an unrecognised one is safest treated as pending.
            cls = PaymentPending
        else:
            cls = NodeError
    return cls(message, code=code, data=data)
