"""Accept-Language negotiation (marketplace/domain/languages.py) and translated messages (domain/messages.py)."""
from __future__ import annotations

import gettext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.domain import languages
from marketplace.domain.errors import InvalidInput
from marketplace.domain.messages import N_, Message, ngettext
from marketplace.web.i18n import catalog, say


@pytest.mark.parametrize(("header", "chosen"), [
    (None, "en"), ("", "en"), ("es", "es"), ("es-MX", "es"), ("ES-es", "es"), ("fr", "en"),
    ("fr, es;q=0.5", "es"), ("en;q=0.4, es;q=0.6", "es"), ("es;q=0.4, en;q=0.6", "en"),
    ("es;q=0, *", "en"), ("en;q=0, *", "es"), ("*", "en"), ("es;q=0", "en"), ("de, *;q=0.1", "en"),
    ("en, es", "en"), ("es, en", "es"), ("es;q=0.5, en;q=0.5", "es"), ("es;q=1.0", "es"),
    ("es;q=2", "en"), ("es;q=abc, en;q=0.1", "en"), ("es-419;q=0.9, en-US;q=0.8", "es"), (",,;;", "en"),
])
def test_negotiate(header: str | None, chosen: str) -> None:
    assert languages.negotiate(header) == chosen


def test_a_stored_choice_wins_and_an_unknown_one_is_ignored() -> None:
    assert languages.choose("es", "en") == "es"
    assert languages.choose("en", "es") == "en"
    assert languages.choose("xx", "es;q=0.3") == "es"
    assert languages.choose(None, None) == "en"


@given(st.text(max_size=600))
def test_any_header_gives_an_offered_language(header: str) -> None:
    assert languages.negotiate(header) in languages.SUPPORTED


_RANGES = st.sampled_from(["es", "es-MX", "en", "en-GB", "fr", "de", "*"])
_Q = st.integers(min_value=0, max_value=1000).map(lambda n: n / 1000)


@given(st.lists(st.tuples(_RANGES, _Q), min_size=1, max_size=6))
def test_the_highest_q_wins(ranges: list[tuple[str, float]]) -> None:
    """Rule: the offered language with the highest q (>0) wins, earlier first on a tie; "*" covers the unnamed."""
    header = ", ".join(f"{tag};q={q:.3f}" for tag, q in ranges)
    named = {tag.split("-")[0] for tag, _ in ranges}
    best: dict[str, tuple[float, int]] = {}
    for position, (tag, q) in enumerate(ranges):
        primary = tag.split("-")[0]
        covered = [primary] if primary in languages.SUPPORTED else (
            [lang for lang in languages.SUPPORTED if lang not in named] if tag == "*" else [])
        for language in covered:
            if q > 0 and (language not in best or (q, -position) > best[language]):
                best[language] = (q, -position)
    expected = max(best, key=lambda lang: best[lang]) if best else "en"
    assert languages.negotiate(header) == expected


def test_a_message_is_english_by_default_and_spanish_when_asked() -> None:
    message = N_("The smallest loan is %(amount)s.", amount="1,000 sat")
    assert str(message) == "The smallest loan is 1,000 sat."
    assert say(message, "es") == "El préstamo mínimo es de 1,000 sat."
    refusal = InvalidInput(message)
    assert refusal.message == "The smallest loan is 1,000 sat." and say(refusal, "es").startswith("El préstamo")


def test_values_that_are_messages_and_plurals_are_translated_too() -> None:
    nested = N_("The %(label)s must be a whole number.", label=N_("page number"))
    assert say(nested, "es") == "El valor de «número de página» debe ser un número entero."
    assert say(ngettext("in %(num)d minute", "in %(num)d minutes", 1), "es") == "dentro de 1 minuto"
    assert say(ngettext("in %(num)d minute", "in %(num)d minutes", 7), "es") == "dentro de 7 minutos"
    assert str(ngettext("in %(num)d minute", "in %(num)d minutes", 7)) == "in 7 minutes"


def test_unmarked_text_is_shown_as_it_is() -> None:
    assert say("100% odd text from a node", "es") == "100% odd text from a node"
    assert Message("50 %", literal=True).translated(gettext.NullTranslations()) == "50 %"
    assert catalog("es") is catalog("es")  # loaded once


def test_a_sentence_chosen_first_takes_its_values_later() -> None:
    chosen = N_("The marketplace has as many unpaid invoices as it takes at once right now. Try again %(wait)s.")
    filled = chosen.with_values(wait=ngettext("in %(num)d minute", "in %(num)d minutes", 2))
    assert str(filled).endswith("Try again in 2 minutes.")
    assert say(filled, "es").endswith("Vuelve a intentarlo dentro de 2 minutos.")
