"""Schemathesis against the running ASGI app: no server error, no answer that breaks the OpenAPI document.

Each operation runs on a fresh database, with the dev node, a lender (funded) and a borrower,
each holding an API token, and a little data (an open request, a pledge, an
active loan, invoices) so that generated ids sometimes find real objects.
Every generated case is sent once as the lender and once as the borrower.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from marketplace.app import create_app
from marketplace.db import migrate
from marketplace.db.engine import Database
from marketplace.settings import Settings
from tests.api.test_api import LOAN, Api, fake_invoice, started_loan
from tests.fixtures.devnode import DevNode
from tests.web.support import TestClient

MAX_EXAMPLES = 25
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
]
CALLS: Counter[str] = Counter()


@dataclass
class Conformance:
    app: Any
    headers: dict[str, dict[str, str]]


def _document_app() -> Any:
    """An app whose only job is to serve the document to schemathesis at collection time.

    (`schemathesis.pytest.from_fixture` does not work with pytest 9, so the schema is loaded at import
    and every test sends its cases to its own app, on its own database, with `app=`.)
    """
    here = Path(tempfile.mkdtemp(prefix="ml-openapi-"))
    document_settings = Settings(mode="embedded", data_dir=here, devnode_dir=here / "devnode",
                                 database_url=f"sqlite:///{here}/empty.sqlite3", secret_key="openapi-document-only")
    database = Database(document_settings.database_url)
    migrate.upgrade(database.engine)  # the lifespan refuses a database behind the code
    return create_app(document_settings, database=database, workers=False)


schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _document_app())


@pytest.fixture
def conformance(settings: Settings, database: Database, devnode_session: DevNode) -> Iterator[Conformance]:
    # The real dev node: deposit invoices are made and withdrawals judged, so no answer is a 503.
    node_settings = settings.replace(cln_rpc=devnode_session.rpc_path("marketplace"), pay_retry_for_s=5)
    app = create_app(node_settings, database=database, workers=False)
    with TestClient(app) as client:
        api = Api(client, database, settings)
        api.user("lea", "lender", funded_sat=200_000)
        api.user("bea", "borrower")
        api.user("bob", "borrower")
        started_loan(api, "bob", "lea")
        loan = api.post("bea", "/loans", LOAN)
        assert loan.status_code == 201, loan.text
        loan_id = loan.json()["loan"]["id"]
        assert api.post("lea", f"/loans/{loan_id}/notes", {"amount_sat": 2_000}).status_code == 201
        fake_invoice(database, api.ids["lea"], None, "deposit")
        fake_invoice(database, api.ids["bob"], 1, "repayment")
        yield Conformance(
            app,
            {name: {"Authorization": f"Bearer {api.tokens[name]}"} for name in ("lea", "bea")},
        )


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    yield
    operations = len([key for key in CALLS if key.startswith("case ")])
    cases = sum(n for key, n in CALLS.items() if key.startswith("case "))
    print(f"\nschemathesis: {operations} operations, {cases} generated cases, {CALLS['requests']} requests "
          f"({CALLS['unauthenticated']} without credentials)")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_the_api_keeps_to_its_document(case: Any, conformance: Conformance) -> None:
    CALLS[f"case {case.operation.label}"] += 1
    # A case that tests the headers themselves (for this API: a missing Authorization) goes out as generated
    # and must be refused; every other case is sent once with each token.
    headers_component = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if headers_component is not None and headers_component.mode is GenerationMode.NEGATIVE:
        CALLS["requests"] += 1
        CALLS["unauthenticated"] += 1
        case.call_and_validate(app=conformance.app, checks=CHECKS)
        return
    for headers in conformance.headers.values():
        CALLS["requests"] += 1
        case.call_and_validate(app=conformance.app, headers=headers, checks=CHECKS)
