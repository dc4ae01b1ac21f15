"""The account service as the CLI uses it (`microlend operator create`)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import select

from marketplace.db.engine import Database
from marketplace.db.tables import accounts, users
from marketplace.domain.errors import EmailTaken, InvalidInput, Refusal
from marketplace.services.accounts import balances_of, count_users, create_user
from marketplace.services.auth import authenticate
from marketplace.settings import Settings

# The database persists across examples: harmless, every example is independent.
settings_for_db = hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_create_operator(database: Database, settings: Settings) -> None:
    user_id = create_user(database, settings, " Op@Example.com ", "operator password", "operator", "Node Op")
    row = database.read(lambda conn: conn.execute(select(users).where(users.c.id == user_id)).one())
    assert (row.email, row.role, row.display_name) == ("op@example.com", "operator", "Node Op")
    assert count_users(database) == 1
    assert balances_of(database, user_id).available_msat == 0
    assert authenticate(database, settings, "op@example.com", "operator password", "cli").id == user_id


def test_refusals_store_nothing(database: Database, settings: Settings) -> None:
    create_user(database, settings, "op@example.com", "operator password", "operator")
    before = database.read(lambda conn: len(conn.execute(select(accounts)).all()))
    with pytest.raises(EmailTaken):
        create_user(database, settings, "OP@example.com", "operator password", "lender")
    with pytest.raises(InvalidInput):
        create_user(database, settings, "not an email", "operator password", "lender")
    with pytest.raises(InvalidInput):
        create_user(database, settings, "x@example.com", "short", "lender")
    with pytest.raises(InvalidInput):
        create_user(database, settings, "x@example.com", "long enough pw", "superuser")
    assert count_users(database) == 1
    assert database.read(lambda conn: len(conn.execute(select(accounts)).all())) == before


@settings_for_db
@given(email=st.text(max_size=40), password=st.text(max_size=30), role=st.sampled_from(["lender", "x"]),
       name=st.text(max_size=20))
def test_any_input_is_created_or_refused_by_name(database: Database, settings: Settings, email: str,
                                                 password: str, role: str, name: str) -> None:
    try:
        create_user(database, settings, email, password, role, name)
    except Refusal:
        pass
    try:
        authenticate(database, settings, email, password, "fuzz")
    except Refusal:
        pass
