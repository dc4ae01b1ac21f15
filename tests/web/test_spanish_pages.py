"""Pages in the reader's language: a walk as anonymous, lender and borrower with Accept-Language: es.

Every catalog string a page shows must come out translated: the walk collects the text a
visitor reads (and the title/placeholder/aria-label/alt values) and looks for the English of
every msgid whose Spanish differs. Refusals from the services and the number parser come
back in Spanish on the page that shows them. The language can be chosen: `?lang=` (kept in a
cookie) for anyone, a stored setting on /settings for a signed-in person; `<html lang>` follows.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import users
from marketplace.domain.journal import AccountKind
from marketplace.services.accounts import create_user
from marketplace.settings import Settings
from tests.ledger_helpers import deposit_entry
from tests.web.support import PASSWORD, TestClient, csrf_token, make_client, sign_in

ROOT = Path(__file__).resolve().parents[2]
SPANISH_PO = ROOT / "locale" / "es" / "LC_MESSAGES" / "microlend.po"
SPANISH = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.4"}
GOOD_REQUEST = {"amount_sat": "20,000", "purpose": "business", "rate": "18", "count": "12", "frequency": "weekly",
                "method": "annuity", "story": "A second sewing machine so I can take twice the orders."}
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%%")
_VISIBLE_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}


class _Text(HTMLParser):
    """The words a visitor reads: text outside script/style, and the visible attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        self.parts.extend(value for name, value in attrs if name in _VISIBLE_ATTRIBUTES and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def _english_pieces() -> list[tuple[str, re.Pattern[str]]]:
    """For each msgid translated differently: its literal pieces (placeholders cut out) as whole-word patterns."""
    with SPANISH_PO.open("rb") as handle:
        catalog = read_po(handle)
    pieces = []
    # A Spanish word that is also an English msgid ("Principal" is Spanish for "Main") is no English left.
    spanish = {string for message in catalog if message.id
               for string in ([message.string] if isinstance(message.string, str) else message.string)}
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        for msgid in ids:
            if msgid in strings:
                continue  # the same in both languages ("Alias", "Local")
            whole = not _PLACEHOLDER.search(msgid)
            for piece in _PLACEHOLDER.split(msgid):
                piece = " ".join(piece.split()).strip(" ,.;:()·—")
                # A whole msgid counts from three letters ("Fee", "Run"); a piece between placeholders
                # only from two words ("sat" or "of" alone says nothing).
                words = [word for word in piece.split() if sum(c.isalpha() for c in word) >= 2]
                if piece in spanish or len(piece) < 3 or (not whole and len(words) < 2):
                    continue
                pattern = re.compile(r"(?<![\w-])" + re.escape(piece) + r"(?![\w-])")
                pieces.append((msgid, pattern))
    return pieces


ENGLISH = _english_pieces()


def english_left(html: str) -> list[str]:
    """The msgids whose English shows, each with the words that gave it away."""
    text = visible_text(html)
    found = {}
    for msgid, pattern in ENGLISH:
        hit = pattern.search(text)
        if hit:
            found[msgid] = text[max(0, hit.start() - 40):hit.end() + 40]
    return sorted(f"{msgid!r} in …{context}…" for msgid, context in found.items())


@pytest.fixture
def people(settings: Settings, database: Database) -> Iterator[dict[str, TestClient]]:
    """Anonymous, a lender with 15,000 sat, a borrower whose open request the lender pledged 5,000 sat to; all ask
    for Spanish."""
    made: dict[str, TestClient] = {}
    try:
        for name, role in (("anon", None), ("lea", "lender"), ("bea", "borrower")):
            client = make_client(settings, database, headers=SPANISH).__enter__()
            made[name] = client
            if role is not None:
                client.user_id = create_user(database, settings, f"{name}@example.org", PASSWORD, role, name)
                assert sign_in(client, f"{name}@example.org").status_code == 303
        lender_id = int(made["lea"].user_id)
        database.run(lambda c: ledger.post(c, [deposit_entry(
            c, ledger.account_id(c, ledger.user_account_code(lender_id, AccountKind.USER_AVAILABLE)), 15_000_000)]))
        bea = made["bea"]
        created = bea.post("/loans/new", data={"csrf_token": csrf_token(bea, "/loans/new"), **GOOD_REQUEST},
                           follow_redirects=False)
        assert created.status_code == 303, created.text
        loan_path = created.headers["location"]
        made["bea"].loan_path = loan_path
        lea = made["lea"]
        pledged = lea.post(loan_path + "/fund", data={"csrf_token": csrf_token(lea, loan_path), "amount_sat": "5000",
                                                      "request_key": ""}, follow_redirects=False)
        assert pledged.status_code == 303, pledged.text
        yield made
    finally:
        for client in made.values():
            client.__exit__(None, None, None)


def _get(client: TestClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.text[:500])
    assert '<html lang="es">' in response.text, path
    assert "Accept-Language" in response.headers.get("vary", ""), path
    return response.text


def test_the_english_detector_finds_english_and_passes_spanish() -> None:
    assert [found.split(" in …")[0] for found in english_left("<p>Sign in</p><input placeholder='my lending bot'>")] \
        == ["'Sign in'", "'my lending bot'"]
    assert english_left("<p>Iniciar sesión</p><script>let x = 'Sign in';</script>") == []


def test_pages_in_spanish_show_no_english_catalog_string(people: dict[str, TestClient]) -> None:
    loan_path = people["bea"].loan_path
    walks = {
        "anon": ["/", "/signin", "/signup", "/signin?next=/dashboard"],
        "lea": ["/dashboard", "/loans", "/loans/market", "/loans/mine", loan_path, "/portfolio", "/autoinvest",
                "/statement", "/settings", "/deposit", "/withdraw", loan_path + "?done=funded"],
        "bea": ["/dashboard", "/loans/new", "/loans/mine", loan_path, "/statement", "/settings", "/withdraw"],
    }
    seen = 0
    problems: list[str] = []
    for who, paths in walks.items():
        for path in paths:
            html = _get(people[who], path)
            problems.extend(f"{who} {path}: {left}" for left in english_left(html))
            seen += 1
    assert problems == [], "\n".join(problems)
    not_found = _get(people["anon"], "/no-such-page", status=404)
    assert "No hay ninguna página en esta dirección." in not_found and english_left(not_found) == []
    assert seen == sum(map(len, walks.values()))


def test_refusals_on_a_page_come_back_in_spanish(people: dict[str, TestClient], database: Database) -> None:
    lea = people["lea"]
    loan_path = people["bea"].loan_path

    def fund(amount: str) -> str:
        response = lea.post(loan_path + "/fund", data={"csrf_token": csrf_token(lea, loan_path),
                                                       "amount_sat": amount, "request_key": ""})
        assert response.status_code == 422, response.text[:500]
        assert english_left(response.text) == []
        return visible_text(response.text)

    assert "Escribe un número entero de sat, como 50000." in fund("diez")
    assert "Tienes 10,000 sat disponibles; presta como máximo eso." in fund("12000")  # a service refusal
    assert "Solo faltan 15,000 sat para financiar esta solicitud; presta como máximo eso." in fund("16000")
    bea = people["bea"]
    refused = bea.post("/loans/new", data={"csrf_token": csrf_token(bea, "/loans/new"),
                                           **{**GOOD_REQUEST, "rate": "12.345"}})
    assert refused.status_code == 422
    assert "El valor de «tasa de interés» con como máximo dos decimales" not in refused.text
    assert "Indica el valor de «tasa de interés» con como máximo dos decimales." in visible_text(refused.text)
    expired = lea.post(loan_path + "/fund", data={"csrf_token": "stale", "amount_sat": "1000"})
    assert expired.status_code == 403
    assert "Tu formulario caducó o no vino de este sitio" in expired.text


def test_the_chosen_language_wins_over_the_browser(settings: Settings, database: Database) -> None:
    create_user(database, settings, "ana@example.org", PASSWORD, "borrower", "Ana")
    with make_client(settings, database, headers={"Accept-Language": "en-GB,en;q=0.9,es;q=0.8"}) as client:
        assert '<html lang="en">' in client.get("/signin").text
        chosen = client.get("/signin?lang=es")
        assert '<html lang="es">' in chosen.text and "Iniciar sesión" in chosen.text
        assert '<html lang="es">' in client.get("/signup").text  # the cookie keeps the choice
        assert sign_in(client, "ana@example.org").status_code == 303
        client.cookies.delete("ml_lang")
        assert '<html lang="en">' in client.get("/settings").text  # no stored choice: the browser's English
        saved = client.post("/settings/language", data={"csrf_token": csrf_token(client, "/settings"),
                                                        "language": "es"}, follow_redirects=True)
        assert '<html lang="es">' in saved.text and "Tu idioma se guardó." in saved.text
        stored = database.read(lambda c: c.execute(select(users.c.language).where(
            users.c.email == "ana@example.org")).scalar_one())
        assert stored == "es"
        client.cookies.delete("ml_lang")
        assert '<html lang="es">' in client.get("/dashboard").text  # the stored choice, not the browser
        wrong = client.post("/settings/language", data={"csrf_token": csrf_token(client, "/settings"),
                                                        "language": "xx"})
        assert wrong.status_code == 422 and "Elige uno de los idiomas disponibles." in wrong.text
        back = client.post("/settings/language", data={"csrf_token": csrf_token(client, "/settings"),
                                                       "language": ""}, follow_redirects=True)
        assert '<html lang="en">' in back.text and "Your language is saved." in back.text
