"""Sending a notice by email: SMTP with the standard library, or no mail at all (the outbox page).

Settings has no SMTP fields yet, so `mailer_from_settings` reads them from
`settings.extra` (MICROLEND_SMTP_HOST, _PORT, _FROM, _USER, _PASSWORD,
_STARTTLS) when the CLI puts unknown MICROLEND_* variables there; without a
host the outbox mailer is used and notices are only shown in the app.
"""
from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from marketplace.settings import Settings

SMTP_TIMEOUT_S = 10.0


class Mailer(Protocol):
    """Delivers one notice or raises; `name` says where it went (shown on the outbox page)."""

    name: str

    def send(self, to: str, subject: str, body: str) -> None: ...


class OutboxMailer:
    """The embedded default: no mail leaves; the notice is 'sent' to the outbox page and the dashboard."""

    name = "outbox"

    def send(self, to: str, subject: str, body: str) -> None:
        return None


@dataclass
class SmtpMailer:
    host: str
    port: int = 587
    sender: str = "microlend@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = True
    timeout_s: float = SMTP_TIMEOUT_S
    name: str = "smtp"

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


def mailer_from_settings(settings: Settings) -> Mailer:
    extra = settings.extra
    host = extra.get("SMTP_HOST", "") or extra.get("smtp_host", "")
    if not host:
        return OutboxMailer()
    port_text = extra.get("SMTP_PORT", "") or extra.get("smtp_port", "") or "587"
    return SmtpMailer(
        host=host, port=int(port_text) if port_text.isascii() and port_text.isdigit() else 587,
        sender=extra.get("SMTP_FROM", "") or extra.get("smtp_from", "") or "microlend@localhost",
        username=extra.get("SMTP_USER", "") or extra.get("smtp_user", ""),
        password=extra.get("SMTP_PASSWORD", "") or extra.get("smtp_password", ""),
        starttls=(extra.get("SMTP_STARTTLS", "") or extra.get("smtp_starttls", "") or "true").lower()
        in {"1", "true", "yes", "on"},
    )
