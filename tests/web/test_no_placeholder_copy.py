"""No page promises what it does not do: no placeholder copy in any template or catalog entry.

"Soon you will deposit over Lightning here" stood on the lender's dashboard long after depositing
worked. Every template's text and every msgid/msgstr of every catalog is searched for the phrases
prototypes leave behind, in English and Spanish.
"""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
# Markers in capitals only: "todo" is Spanish for "all".
PLACEHOLDER = re.compile(
    r"(?i:\bsoon you\b|\bcoming soon\b|\bsoon\b.{0,40}\bwill\b|\bnot (yet )?implemented\b|\blorem ipsum\b|"
    r"\bwork in progress\b|\bunder construction\b|\bpr[oó]ximamente\b|\bpronto podr[aá]s?\b|\ben construcci[oó]n\b)"
    r"|\bTODO\b|\bFIXME\b|\bTBD\b")


def _catalog_texts() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "locale" / "microlend.pot", *sorted((ROOT / "locale").glob("*/LC_MESSAGES/*.po"))]:
        with path.open("rb") as handle:
            catalog = read_po(handle)
        for message in catalog:
            for text in (message.id, message.string):
                for part in (text if isinstance(text, (list, tuple)) else [text]):
                    if part:
                        found.append((f"{path.relative_to(ROOT)}: {message.id!r}", str(part)))
    return found


def test_the_pattern_finds_what_the_dashboards_once_said() -> None:
    for said in ("This is your money on Microlend. Soon you will deposit over Lightning here.",
                 "Pronto podrás pedir préstamos aquí.", "Coming soon", "TODO: the real page"):
        assert PLACEHOLDER.search(said), said
    for fine in ("Pay as soon as you can: after the grace period a late fee is added.",
                 "The repayment card is ready once the loan is paid out."):
        assert not PLACEHOLDER.search(fine), fine


def test_no_template_holds_placeholder_copy() -> None:
    templates = sorted((ROOT / "templates").rglob("*.html"))
    assert len(templates) > 20
    found = [f"{path.relative_to(ROOT)}: {match.group(0)!r}" for path in templates
             for match in PLACEHOLDER.finditer(path.read_text())]
    assert not found, found


def test_no_catalog_entry_holds_placeholder_copy() -> None:
    texts = _catalog_texts()
    assert len(texts) > 500
    found = [f"{where}: {match.group(0)!r}" for where, text in texts for match in PLACEHOLDER.finditer(text)]
    assert not found, found
