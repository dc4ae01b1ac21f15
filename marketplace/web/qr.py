"""QR codes for invoices, rendered on the server as inline SVG (segno)."""
from __future__ import annotations

import segno


def invoice_qr_svg(bolt11: str, title: str = "Lightning invoice QR code") -> str:
    # Upper case lets the QR use its compact alphanumeric mode; wallets accept both.
    qr = segno.make(f"LIGHTNING:{bolt11.upper()}", error="m")
    # omitsize: a viewBox instead of a fixed size, so CSS can scale it to the screen.
    svg: str = qr.svg_inline(scale=3, border=2, dark="#111", light="#fff", title=title, omitsize=True)
    return svg


def pay_code_qr_svg(lnurl: str) -> str:
    """A loan's static pay code (`lightning:LNURL1...`): the same for every payment, so it can be printed."""
    return invoice_qr_svg(lnurl, "Lightning pay code QR code")
