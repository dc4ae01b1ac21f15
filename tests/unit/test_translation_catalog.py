"""The one gettext catalog (`locale/microlend.pot`) stays complete and current.

1. Re-extracting with the command from locale/README.md gives exactly the msgids
   that are committed, so the catalog cannot go stale (templates and the N_()
   marks in Python alike).
2. No template keeps visible English outside `{{ _("...") }}`: a simple scanner
   drops Jinja comments and blocks, `<script>`/`<style>`/`<code>` contents and tags
   (keeping only the alt/title/placeholder/aria-label attribute values, which are
   visible), then looks for words of three or more letters that are not on a short
   allow-list of intentional literals.
3. Spanish is complete: every msgid of the template has a non-fuzzy, non-empty
   translation (every plural form) with exactly the msgid's %(name)s set, no
   stray %, and the committed .mo is the compiled .po.
"""
from __future__ import annotations

import gettext
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
CATALOG = ROOT / "locale" / "microlend.pot"

# Literals that are shown as they are in every language.
ALLOWED_WORDS = {
    "Microlend",  # brand name
    "BOLT11",
    "sat",
    "msat",
    "APR",
    "PAR1",
    "PAR30",
    "CSV",
    "JSON",
    "htmx",
    "UTC",
    "lnbc",  # the start of a BOLT11 invoice, as a placeholder
}

_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_JINJA_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_LITERAL_ELEMENT = re.compile(r"<(script|style|code)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>", re.S)
_VISIBLE_ATTRIBUTE = re.compile(r"""\b(?:alt|title|placeholder|aria-label)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_ENTITY = re.compile(r"&#?\w+;")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _template_files() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def visible_words(source: str) -> list[str]:
    """Words of 3+ letters a visitor would read that are not inside a Jinja expression or tag."""
    text = _JINJA_COMMENT.sub(" ", source)
    text = _JINJA_BLOCK.sub(" ", text)
    text = _LITERAL_ELEMENT.sub(" ", text)

    def tag_to_visible_attributes(match: re.Match[str]) -> str:
        values = [a or b for a, b in _VISIBLE_ATTRIBUTE.findall(match.group(0))]
        return " " + " ".join(values) + " "

    text = _TAG.sub(tag_to_visible_attributes, text)
    text = _ENTITY.sub(" ", text)
    return [
        word
        for word in _WORD.findall(text)
        if sum(c.isalpha() for c in word) >= 3 and word not in ALLOWED_WORDS
    ]


def test_scanner_finds_plain_text_and_ignores_wrapped_text() -> None:
    assert visible_words('<p>Hello there</p>') == ["Hello", "there"]
    assert visible_words('<input placeholder="your name" name="display_name">') == ["your", "name"]
    assert visible_words(
        '{# a comment #}<p class="hint">{{ _("Wrapped %(n)s", n=count) }} sat</p>'
        '<script>let words = "not shown";</script><code>Bearer &lt;token&gt;</code>'
        '<a href="/x" aria-label="{{ _(\'Open\') }}">{% if a > 1 %}{{ b }}{% endif %}</a>'
    ) == []


@pytest.mark.parametrize("template", _template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_has_no_unwrapped_visible_text(template: Path) -> None:
    leftovers = visible_words(template.read_text(encoding="utf-8"))
    assert leftovers == [], f"{template.relative_to(ROOT)}: wrap these words in _(): {leftovers}"


def _msgids(path: Path) -> set[object]:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    return {message.id for message in catalog if message.id}


def test_committed_catalog_matches_a_fresh_extraction(tmp_path: Path) -> None:
    fresh = tmp_path / "microlend.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    command = [str(pybabel)] if pybabel.exists() else [sys.executable, "-m", "babel.messages.frontend"]
    done = subprocess.run(
        [*command, "extract", "-F", "babel.cfg", "-o", str(fresh), "--project=microlend", "--version=0.1.0",
         "--no-location", "--sort-output", "."],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    committed, extracted = _msgids(CATALOG), _msgids(fresh)
    assert extracted, "the extraction found no messages"
    assert committed == extracted, (
        "locale/microlend.pot is stale; re-extract it (locale/README.md). "
        f"Missing: {sorted(map(str, extracted - committed))}; obsolete: {sorted(map(str, committed - extracted))}"
    )


# --- the Spanish catalog ----------------------------------------------------------------------------------

SPANISH_PO = ROOT / "locale" / "es" / "LC_MESSAGES" / "microlend.po"
SPANISH_MO = SPANISH_PO.with_suffix(".mo")
_NAMED = re.compile(r"%\((\w+)\)[sd]")
_ANY_CONVERSION = re.compile(r"%(?:\(\w+\))?.")


def _catalog(path: Path) -> Any:
    with path.open("rb") as handle:
        return read_po(handle)


def _forms(value: object) -> list[str]:
    return [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]


def test_spanish_has_every_msgid_of_the_template_and_no_other() -> None:
    template = {message.id for message in _catalog(CATALOG) if message.id}
    spanish = {message.id for message in _catalog(SPANISH_PO) if message.id}
    assert spanish == template, (
        "update the Spanish catalog (locale/README.md): "
        f"missing {sorted(map(str, template - spanish))}; obsolete {sorted(map(str, spanish - template))}")


def test_every_spanish_translation_is_done_and_keeps_the_placeholders() -> None:
    catalog = _catalog(SPANISH_PO)
    assert catalog.num_plurals >= 2
    for message in catalog:
        if not message.id:
            continue
        assert "fuzzy" not in message.flags, message.id
        ids, strings = _forms(message.id), _forms(message.string)
        assert len(strings) == (1 if len(ids) == 1 else catalog.num_plurals), message.id
        wanted = set(_NAMED.findall(ids[0]))
        for msgid in ids[1:]:
            assert set(_NAMED.findall(msgid)) == wanted, msgid
        for string in strings:
            assert string.strip(), f"no Spanish for {message.id!r}"
            assert set(_NAMED.findall(string)) == wanted, (message.id, string)
            # Every % in a translation is a placeholder or %%: it formats with the msgid's values.
            assert all(c == "%%" or _NAMED.fullmatch(c) for c in _ANY_CONVERSION.findall(string)), string
            values: dict[str, object] = {name: "x" for name in wanted} | ({"num": 2} if len(ids) > 1 else {})
            string % values  # raises on a stray %


def test_the_committed_spanish_mo_is_the_compiled_po() -> None:
    compiled = gettext.GNUTranslations(SPANISH_MO.open("rb"))
    for message in _catalog(SPANISH_PO):
        if not message.id:
            continue
        ids, strings = _forms(message.id), _forms(message.string)
        if len(ids) == 1:
            assert compiled.gettext(ids[0]) == strings[0], ids[0]
        else:
            assert compiled.ngettext(ids[0], ids[1], 1) == strings[0], ids[0]
            assert compiled.ngettext(ids[0], ids[1], 5) == strings[1], ids[0]


@pytest.mark.parametrize("python_file", ["marketplace/domain/numbers.py", "marketplace/services/loans.py"])
def test_marked_python_messages_are_in_the_catalog(python_file: str) -> None:
    """N_() in Python is extracted (babel.cfg): a sample sentence from each layer is a msgid."""
    msgids = _msgids(CATALOG)
    source = (ROOT / python_file).read_text(encoding="utf-8")
    marked = re.findall(r'N_\("([^"\\]+)"', source)
    assert marked, python_file
    assert set(marked) <= msgids, sorted(set(marked) - msgids)


def test_the_translatable_rules_say_what_the_code_docstrings_say() -> None:
    from marketplace.domain.loans.allocation import __doc__ as allocation_doc
    from marketplace.domain.loans.sharing import __doc__ as sharing_doc
    from marketplace.web import rules_text
    from marketplace.web.views.loans import allocation_steps

    assert [str(step) for step in rules_text.ALLOCATION_STEPS] == allocation_steps(allocation_doc or "")
    assert [str(step) for step in rules_text.SHARING_STEPS] == allocation_steps(sharing_doc or "")
