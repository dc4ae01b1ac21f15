"""The one error portfolio/ raises for bad input: a ValueError with a sentence a person understands.

The web layer can map it to a 422 with `message`, as it does marketplace's
InvalidInput; portfolio/ may not import marketplace/, so it is its own class.
"""
from __future__ import annotations


class PortfolioInputError(ValueError):
    code = "invalid_input"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
