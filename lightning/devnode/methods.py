"""The JSON-RPC method table: name -> (handler, parameter spec)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning.devnode import chain, invoicing, paying
from lightning.devnode import params as p
from lightning.devnode.network import HostedNode, Network
from lightning.devnode.rpcerror import METHOD_NOT_FOUND, RpcFailure

Json = dict[str, Any]
Handler = Callable[[Network, HostedNode, Json], Json]
Spec = p.Spec

METHODS: dict[str, tuple[Handler, Spec]] = {
    "getinfo": (chain.getinfo, chain.GETINFO_PARAMS),
    "listpeerchannels": (chain.listpeerchannels, chain.LISTPEERCHANNELS_PARAMS),
    "listfunds": (chain.listfunds, chain.LISTFUNDS_PARAMS),
    "connect": (chain.connect, chain.CONNECT_PARAMS),
    "fundchannel": (chain.fundchannel, chain.FUNDCHANNEL_PARAMS),
    "close": (chain.close, chain.CLOSE_PARAMS),
    "invoice": (invoicing.invoice, invoicing.INVOICE_PARAMS),
    "listinvoices": (invoicing.listinvoices, invoicing.LISTINVOICES_PARAMS),
    "waitanyinvoice": (invoicing.waitanyinvoice, invoicing.WAITANY_PARAMS),
    "waitinvoice": (invoicing.waitinvoice, invoicing.WAITINVOICE_PARAMS),
    "delinvoice": (invoicing.delinvoice, invoicing.DELINVOICE_PARAMS),
    "wait": (invoicing.wait, invoicing.WAIT_PARAMS),
    "decode": (invoicing.decode, invoicing.DECODE_PARAMS),
    "xpay": (paying.xpay, paying.XPAY_PARAMS),
    "pay": (paying.pay, paying.PAY_PARAMS),
    "keysend": (paying.keysend, paying.KEYSEND_PARAMS),
    "xkeysend": (paying.xkeysend, paying.XKEYSEND_PARAMS),
    "listpays": (paying.listpays, paying.LIST_PARAMS),
    "listsendpays": (paying.listsendpays, paying.LIST_PARAMS),
}


def dispatch(net: Network, node: HostedNode, method: str, raw_params: Any) -> Json:
    entry = METHODS.get(method)
    if entry is None:
        raise RpcFailure(METHOD_NOT_FOUND, f"Unknown command '{method}'")
    handler, (names, required, converters) = entry
    return handler(net, node, p.bind(raw_params, names, required, converters))
