"""The smaller findings of the second hostile test (issue 21, finding 7).

- refusals named internal accounts (`user:26:available`): now words;
- ids padded with no-break spaces resolved (`/loans/%C2%A05%C2%A0` → 200): one strict id parser;
- stories took the right-to-left override U+202E: bidirectional controls are stripped from stories and from
  everything a page prints.
"""
from __future__ import annotations

import pytest
from sqlalchemy import Connection, select, update

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import loans
from marketplace.domain.errors import InsufficientFunds
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.settings import Settings
from tests.api.test_api import Api, new_loan
from tests.ledger_helpers import deposit_entry, make_user
from tests.web.support import make_client, sign_in

RLO = "\u202e"


def test_a_refusal_names_the_account_in_words(database: Database) -> None:
    """The ledger's own refusal (what a withdrawal beyond the balance met): words, not `user:26:available`."""
    def overdraw(conn: Connection) -> None:
        _, accounts = make_user(conn, "borrower")
        available = accounts[AccountKind.USER_AVAILABLE]
        ledger.post(conn, [deposit_entry(conn, available, 1_000)])
        equity = ledger.account_id(conn, "system:equity")
        ledger.post(conn, [EntryDraft("test", (LineDraft(available, 5_000), LineDraft(equity, -5_000)))])

    with pytest.raises(InsufficientFunds) as refused:
        database.run(overdraw)
    message = refused.value.message
    assert "user:" not in message and ":available" not in message
    assert message == "Not enough funds in your available balance: it holds 1 sat, this needs 5 sat."


def test_ids_padded_with_no_break_spaces_name_nothing(settings: Settings, database: Database) -> None:
    with make_client(settings, database) as client:
        api = Api(client, database, settings)
        api.user("bea", "borrower")
        loan_id = new_loan(api)
        assert sign_in(client, "bea@example.org").status_code == 303
        assert client.get(f"/loans/{loan_id}").status_code == 200
        for padded in (f"%C2%A0{loan_id}%C2%A0", f"{loan_id}%C2%A0", f"%E2%80%AF{loan_id}", f"0{loan_id}",
                       f"+{loan_id}", f"%20{loan_id}"):
            assert client.get(f"/loans/{padded}", follow_redirects=False).status_code == 404, padded
            assert api.get("bea", f"/loans/{padded}").status_code == 404, padded


def test_stories_lose_their_bidi_controls_and_pages_print_none(settings: Settings, database: Database) -> None:
    with make_client(settings, database) as client:
        api = Api(client, database, settings)
        api.user("bea", "borrower")
        story = f"A stall by the market{RLO} 0001 tnuocca ot yap, and a second sewing machine."
        loan_id = new_loan(api, story=story)
        stored = database.read(lambda c: c.execute(select(loans.c.story).where(loans.c.id == loan_id)).scalar_one())
        assert RLO not in stored and "0001 tnuocca" in stored
        # A story stored before (or any other text): the page prints it without the control.
        database.run(lambda c: c.execute(update(loans).where(loans.c.id == loan_id).values(story=story)))
        assert sign_in(client, "bea@example.org").status_code == 303
        page = client.get(f"/loans/{loan_id}")
        assert page.status_code == 200 and "0001 tnuocca" in page.text
        assert RLO not in page.text and "\u2066" not in page.text
