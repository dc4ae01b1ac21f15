"""On the embedded dev node (no BOLT12), the loan page and repayment card say offers need a real node."""
from __future__ import annotations

from marketplace.db.engine import Database
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.reach_support import active_loan
from tests.web.support import TestClient, sign_in


def test_on_the_dev_node_the_loan_page_and_card_say_offers_need_a_real_node(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    loan = active_loan(database, node_settings, devnode_session, "nooffer")
    assert sign_in(app_client, loan.borrower_email).status_code == 303
    for path in (f"/loans/{loan.loan_id}", f"/loans/{loan.loan_id}/card"):
        page = app_client.get(path)
        assert page.status_code == 200
        assert "BOLT12 offers need a real Core Lightning node" in page.text and "lno1" not in page.text
