"""The production adapter: Core Lightning over its JSON-RPC unix socket.

pyln-client is blocking, so every call runs in a worker thread
(`anyio.to_thread.run_sync`) and the event loop never waits on the socket.
Errors leave this module only as `lightning.errors` classes.
"""
from __future__ import annotations

import errno
from functools import partial
from typing import Any

import anyio.to_thread
from pyln.client import LightningRpc, RpcError

from lightning import cln_parse
from lightning.errors import (
    InvoiceNotFound,
    InvoiceStatusUnexpected,
    MalformedReply,
    NodeNotReached,
    NodeUnreachable,
    WaitTimeout,
    error_for_code,
)
from lightning.port import (
    Channel,
    ChannelClosed,
    ChannelOpened,
    CreatedInvoice,
    CreatedOffer,
    DecodedPayment,
    Funds,
    InvoiceStatus,
    InvoiceUpdate,
    LightningPort,
    NodeInfo,
    PaidInvoice,
    PaymentResult,
    PaymentStatus,
)

Json = dict[str, Any]

# xpay arrived in v24.11; older nodes only have `pay`.
XPAY_SINCE = (24, 11)
# Prefixes the JSON-RPC ids, so lightningd's logs (and the dev node's
# recordings) show which calls came from Microlend.
CMD_PREFIX = "microlend"
# Errors only connect() gives on a unix socket: the request was never sent.
_NOT_CONNECTED = {errno.ENOENT, errno.ECONNREFUSED, errno.EACCES, errno.ENOTSOCK, errno.ENOTDIR}


class _TimedRpc(LightningRpc):  # type: ignore[misc]
    """A LightningRpc whose socket reads give up after `timeout_s`.

    CLN's `wait` has no timeout of its own; closing the connection is how a
    client abandons it (lightningd then drops the command).
    """

    def __init__(self, socket_path: str, timeout_s: float) -> None:
        super().__init__(socket_path)
        self._timeout_s = timeout_s
        self.cmdprefix = CMD_PREFIX

    def _readobj(self, sock: Any, buff: bytes = b"") -> Any:
        if sock.sock is not None:
            sock.sock.settimeout(self._timeout_s)
        return super()._readobj(sock, buff)


class ClnAdapter:
    """`LightningPort` over pyln-client's LightningRpc."""

    def __init__(self, rpc_path: str) -> None:
        self.rpc_path = rpc_path
        self._rpc = LightningRpc(rpc_path)
        self._rpc.cmdprefix = CMD_PREFIX
        self._version: tuple[int, int] | None = None

    # -- plumbing -------------------------------------------------------

    def _call_sync(self, rpc: LightningRpc, method: str, params: Json) -> Json:
        try:
            result = rpc.call(method, params)
        except RpcError as exc:
            error = exc.error
            if not isinstance(error, dict):
                # pyln reports a connection closed mid-reply as a bare string.
                raise NodeUnreachable(f"{method}: {error}") from exc
            code = error.get("code")
            if isinstance(code, bool) or not isinstance(code, int):
                raise MalformedReply(f"{method}: error without a numeric code: {error!r:.200}") from exc
            message = str(error.get("message") or f"{method} failed with code {code} and no message")
            raise error_for_code(code, message, error.get("data"), method) from exc
        except TimeoutError:
            raise
        except OSError as exc:
            if exc.errno in _NOT_CONNECTED:
                raise NodeNotReached(
                    f"cannot reach the Lightning node at {self.rpc_path}: {exc}"
                ) from exc
            raise NodeUnreachable(f"{method}: the connection to the node failed mid-call: {exc}") from exc
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
            # Not JSON-RPC (pyln chokes on a non-object, a wrong id, no result): the node answered nonsense.
            raise MalformedReply(f"{method}: malformed reply from the node: {exc!s:.200}") from exc
        if not isinstance(result, dict):
            raise MalformedReply(f"{method}: the result is not an object")
        return result

    async def call(self, method: str, params: Json | None = None, *, abandonable: bool = False) -> Json:
        """Any CLN method, with None-valued parameters dropped (as pyln does).

        `abandonable` calls (long waits that change nothing) let a cancelled
        caller go at once, leaving the thread to finish on its own; others
        are always waited for, so an outcome is never lost.
        """
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return await anyio.to_thread.run_sync(
            partial(self._call_sync, self._rpc, method, clean), abandon_on_cancel=abandonable
        )

    async def _version_tuple(self) -> tuple[int, int]:
        if self._version is None:
            info = await self.call("getinfo")
            self._version = cln_parse.version_tuple(cln_parse.node_info(info).version)
        return self._version

    # -- receiving ------------------------------------------------------

    async def create_invoice(
        self, amount_msat: int, label: str, description: str, expiry_s: int, *, deschashonly: bool = False
    ) -> CreatedInvoice:
        params: Json = {"amount_msat": amount_msat, "label": label, "description": description, "expiry": expiry_s}
        if deschashonly:  # only sent when asked, as older callers (and transcripts) never sent it
            params["deschashonly"] = True
        reply = await self.call("invoice", params)
        return cln_parse.created_invoice(label, reply)

    async def wait_any_paid(
        self, after_pay_index: int, timeout_s: int | None
    ) -> PaidInvoice | None:
        try:
            reply = await self.call(
                "waitanyinvoice", {"lastpay_index": after_pay_index, "timeout": timeout_s}, abandonable=True
            )
        except WaitTimeout:
            return None
        return cln_parse.paid_after(reply, after_pay_index)

    async def list_paid_since(self, updated_index: int, limit: int) -> list[InvoiceUpdate]:
        reply = await self.call(
            "listinvoices", {"index": "updated", "start": updated_index, "limit": limit}
        )
        return cln_parse.invoices(reply, updated_from=updated_index)

    async def wait_updated(self, next_value: int, timeout_s: float | None) -> int | None:
        params: Json = {"subsystem": "invoices", "indexname": "updated", "nextvalue": next_value}
        rpc = self._rpc if timeout_s is None else _TimedRpc(self.rpc_path, timeout_s)
        try:
            reply = await anyio.to_thread.run_sync(
                partial(self._call_sync, rpc, "wait", params), abandon_on_cancel=True
            )
        except TimeoutError:
            return None
        return cln_parse.wait_value(reply, next_value)

    async def lookup_invoice(self, label: str) -> InvoiceUpdate | None:
        reply = await self.call("listinvoices", {"label": label})
        found = [i for i in cln_parse.invoices(reply) if i.label == label]
        return found[0] if found else None

    async def create_offer(self, description: str, label: str) -> CreatedOffer:
        reply = await self.call("offer", {"amount": "any", "description": description, "label": label})
        return cln_parse.created_offer(reply)

    async def cancel_invoice(self, label: str) -> InvoiceStatus | None:
        try:
            await self.call("delinvoice", {"label": label, "status": "unpaid"})
        except InvoiceNotFound:
            return None
        except InvoiceStatusUnexpected:
            found = await self.lookup_invoice(label)
            return None if found is None else found.status
        return None

    async def list_invoices(
        self, status: InvoiceStatus | None = None, start: int = 0, limit: int | None = None
    ) -> list[InvoiceUpdate]:
        params: Json = {}
        if start or limit is not None:
            params = {"index": "created", "start": start, "limit": limit}
        reply = await self.call("listinvoices", params)
        invoices = cln_parse.invoices(reply)
        # CLN's listinvoices has no status filter: the page is filtered here.
        return [i for i in invoices if status is None or i.status == status]

    # -- sending --------------------------------------------------------

    async def pay(
        self, bolt11: str, amount_msat: int | None, maxfee_msat: int, retry_for_s: int
    ) -> PaymentResult:
        if await self._version_tuple() >= XPAY_SINCE:
            reply = await self.call(
                "xpay",
                {
                    "invstring": bolt11,
                    "amount_msat": amount_msat,
                    "maxfee": maxfee_msat,
                    "retry_for": retry_for_s,
                },
            )
        else:
            reply = await self.call(
                "pay",
                {
                    "bolt11": bolt11,
                    "amount_msat": amount_msat,
                    "maxfee": maxfee_msat,
                    "retry_for": retry_for_s,
                },
            )
        return cln_parse.payment_result(reply)

    async def payment_status(self, payment_hash: str) -> PaymentStatus:
        reply = await self.call("listpays", {"payment_hash": payment_hash})
        return cln_parse.payment_status(payment_hash, reply)

    async def decode(self, bolt11: str) -> DecodedPayment:
        return cln_parse.decoded(await self.call("decode", {"string": bolt11}))

    # -- node and channels ----------------------------------------------

    async def node_info(self) -> NodeInfo:
        info = cln_parse.node_info(await self.call("getinfo"))
        self._version = cln_parse.version_tuple(info.version)
        return info

    async def channels(self) -> list[Channel]:
        return cln_parse.channels(await self.call("listpeerchannels"))

    async def funds(self) -> Funds:
        return cln_parse.funds(await self.call("listfunds"))

    async def connect(self, peer_id: str, host: str | None, port: int | None) -> None:
        await self.call("connect", {"id": peer_id, "host": host, "port": port})

    async def open_channel(self, peer_id: str, amount_sat: int) -> ChannelOpened:
        return cln_parse.channel_opened(await self.call("fundchannel", {"id": peer_id, "amount": amount_sat}))

    async def close_channel(self, peer_id_or_scid: str) -> ChannelClosed:
        return cln_parse.channel_closed(await self.call("close", {"id": peer_id_or_scid}))


def _conforms(adapter: ClnAdapter) -> LightningPort:
    return adapter  # mypy checks here that the adapter implements the whole port
