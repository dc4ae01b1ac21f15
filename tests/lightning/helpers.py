"""Small helpers shared by the Lightning tests."""
from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run one adapter coroutine to completion from a sync test."""
    return anyio.run(fn, *args)


def label(prefix: str = "test") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
