"""The one exception dev node handlers raise to answer with a JSON-RPC error."""
from __future__ import annotations

from typing import Any

# Codes from Core Lightning's common/jsonrpc_errors.h (see cln-schemas/errors.md).
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
LIGHTNINGD = -1
PAY_RHASH_ALREADY_USED = 201
PAY_DESTINATION_PERM_FAIL = 203
PAY_ROUTE_NOT_FOUND = 205
PAY_ROUTE_TOO_EXPENSIVE = 206
PAY_INVOICE_EXPIRED = 207
PAY_INJECTPAYMENTONION_ALREADY_PAID = 219
FUND_CANNOT_AFFORD = 301
FUNDING_PEER_NOT_CONNECTED = 305
FUNDING_UNKNOWN_PEER = 306
CONNECT_NO_KNOWN_ADDRESS = 400
CONNECT_ALL_ADDRESSES_FAILED = 401
INVOICE_LABEL_ALREADY_EXISTS = 900
INVOICE_PREIMAGE_ALREADY_EXISTS = 901
INVOICE_EXPIRED_DURING_WAIT = 903
INVOICE_WAIT_TIMED_OUT = 904
INVOICE_NOT_FOUND = 905
INVOICE_STATUS_UNEXPECTED = 906


class RpcFailure(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def bad_param(name: str, should_be: str) -> RpcFailure:
    # Real lightningd (non-developer mode) hides the token behind this phrase.
    return RpcFailure(
        INVALID_PARAMS, f"{name}: should be {should_be}: invalid token (see logs for details)"
    )
