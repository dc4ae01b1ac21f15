"""Shared fixtures: settings, and a fresh migrated database per test on each backend.

`database` and `db_url` are parametrized over SQLite and, when
MICROLEND_TEST_DATABASE_URL is set, PostgreSQL. In CI (CI=true) that variable
is required: PostgreSQL tests must run there, never be skipped.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketplace.db.engine import Database
from marketplace.settings import Settings
from tests.databases import PostgresTemplate, SqliteTemplate

pytest_plugins = ["tests.fixtures.devnode", "tests.fixtures.realnode"]

PG_URL = os.environ.get("MICROLEND_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI", "").lower() == "true" and not PG_URL:
        raise pytest.UsageError("CI=true but MICROLEND_TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI.")


def pytest_report_header(config: pytest.Config) -> str:
    return f"microlend database backends: {', '.join(BACKENDS)}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteTemplate]:
    template = SqliteTemplate(tmp_path_factory.mktemp("sqlite"))
    yield template
    template.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    if not PG_URL:
        pytest.skip("MICROLEND_TEST_DATABASE_URL is not set")
    template = PostgresTemplate(PG_URL)
    yield template
    template.close()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, fully migrated database (one per test)."""
    name = "sqlite_template" if request.param == "sqlite" else "postgres_template"
    template: SqliteTemplate | PostgresTemplate = request.getfixturevalue(name)
    url = template.new_url()
    yield url
    template.drop(url)


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Embedded-mode settings on the test's database, with cheap password hashing.

    Every test client comes from one address, and tests sign up more people than anyone would from one
    network: the sign-up limit is lifted here (tests of the limit set their own).
    """
    return Settings(
        mode="embedded",
        data_dir=tmp_path / "data",
        devnode_dir=tmp_path / "data" / "devnode",
        database_url=db_url,
        secret_key="test-secret-key-not-for-production",
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        signup_per_address=10_000,
    )
