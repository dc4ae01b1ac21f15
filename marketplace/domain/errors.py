"""Named refusals. Each has a stable code and a sentence a person understands.

Services raise these; the web layer maps `status` to an HTTP status and shows
`text` translated into the reader's language (`message` is the English, for logs,
the CLI and stored reasons). Mark each sentence with `N_()` where it is written.
"""
from __future__ import annotations

from marketplace.domain.messages import Message, as_message


class Refusal(Exception):
    code = "refused"
    status = 400

    def __init__(self, message: str | Message) -> None:
        self.text = as_message(message)
        self.message = str(self.text)
        super().__init__(self.message)


class InvalidInput(Refusal):
    code = "invalid_input"
    status = 422


class NotFound(Refusal):
    code = "not_found"
    status = 404


class Forbidden(Refusal):
    code = "forbidden"
    status = 403


class Conflict(Refusal):
    code = "conflict"
    status = 409


class UnbalancedEntry(Refusal):
    code = "unbalanced_entry"
    status = 422


class InsufficientFunds(Refusal):
    code = "insufficient_funds"
    status = 409


class IdempotencyConflict(Refusal):
    code = "idempotency_conflict"
    status = 409


class UnknownAccount(Refusal):
    code = "unknown_account"
    status = 404


class EmailTaken(Refusal):
    code = "email_taken"
    status = 409


class InvalidCredentials(Refusal):
    code = "invalid_credentials"
    status = 401


class TooManyAttempts(Refusal):
    code = "too_many_attempts"
    status = 429


class SignInRequired(Refusal):
    code = "signin_required"
    status = 401


class SignInThrottled(TooManyAttempts):
    """Too many failed sign-ins; `retry_after_s` feeds the Retry-After header."""

    def __init__(self, message: str | Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SignUpThrottled(TooManyAttempts):
    """Too many sign-ups from one network address; `retry_after_s` feeds the Retry-After header."""

    def __init__(self, message: str | Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LightningUnavailable(Refusal):
    """The node cannot be reached; nothing was changed."""

    code = "lightning_unavailable"
    status = 503


class InvoiceRefused(Refusal):
    """A BOLT11 invoice that cannot be paid: malformed, another network, expired, ..."""

    code = "invoice_refused"
    status = 422


class BodyTooLarge(Refusal):
    """A request body over the limit; nothing of it was read further."""

    code = "too_large"
    status = 413
