"""Text people typed, made safe to show next to other people's text.

Bidirectional controls (the embeddings and overrides U+202A-U+202E, the
isolates U+2066-U+2069, and the marks U+200E, U+200F, U+061C) reorder what
follows them on screen: a story with U+202E shows its words backwards and can
make a number or a name read as another. Nothing we show needs them, so they
are removed: from stories when they are written, and from every value a page
prints (marketplace/web/rendering.py), so text stored before is covered too.
"""
from __future__ import annotations

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_REMOVE = {ord(ch): None for ch in BIDI_CONTROLS}


def strip_bidi(text: str) -> str:
    """`text` without bidirectional controls."""
    return text.translate(_REMOVE)
