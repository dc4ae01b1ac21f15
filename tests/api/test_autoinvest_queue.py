"""Auto-invest rule saves are bounded (issue 21, finding 6).

1,000 `PUT /api/v1/autoinvest` in 30 s were all accepted and left 1,000
`autoinvest_queue` rows, stamped with a run id and never deleted. Now a
lender's pending triggers coalesce into one, a finished run's triggers are
pruned, and rule changes are limited per lender (429 with Retry-After).
"""
from __future__ import annotations

from sqlalchemy import func, select

from marketplace.db.engine import Database
from marketplace.db.tables import autoinvest_queue, autoinvest_rule_changes
from marketplace.services.autoinvest import run_autoinvest
from marketplace.settings import Settings
from tests.api.test_api import Api, error_code
from tests.web.support import make_client

RULES = {"enabled": True, "budget_msat": 20_000_000, "grades": ["A", "B", "C", "D", "E"]}


def _rows(database: Database, table: object) -> int:
    return database.read(lambda c: int(c.execute(select(func.count()).select_from(table)).scalar_one()))  # type: ignore[arg-type]


def test_many_rule_saves_leave_one_trigger_and_are_limited(settings: Settings, database: Database) -> None:
    with make_client(settings, database) as client:
        api = Api(client, database, settings)
        api.user("lea", "lender", funded_sat=50_000)
        before = _rows(database, autoinvest_queue)
        limit = settings.autoinvest_changes_per_window
        statuses = [api.call("lea", "PUT", "/autoinvest", json={**RULES, "budget_msat": (10 + n % 5) * 1_000_000})
                    .status_code for n in range(limit + 10)]
        assert statuses == [200] * limit + [429] * 10
        refused = api.call("lea", "PUT", "/autoinvest", json=RULES)
        assert error_code(refused) == "too_many_rule_changes" and int(refused.headers["retry-after"]) >= 1
        assert _rows(database, autoinvest_queue) - before == 1  # one pending trigger for the lender
        assert _rows(database, autoinvest_rule_changes) == limit
        report = run_autoinvest(database, settings)
        assert report.run_id is not None
        assert _rows(database, autoinvest_queue) == 0  # spent triggers pruned
