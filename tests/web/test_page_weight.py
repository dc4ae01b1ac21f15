"""Page weight on a slow phone connection: each main page's HTML plus the CSS and JS it links < 60 KB.

Weighed through the real ASGI app (lifespan, listener, dev node) as the right
signed-in person, with `Accept-Encoding: gzip`: the bytes that cross the wire
(transfer size), nothing cached. Also: no page loads a script, stylesheet or
font from anywhere but the app's own /static/. `pytest -s` prints the table.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

import anyio
import httpx
import pytest

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.services.accounts import create_user
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.web.support import PASSWORD, TestClient, csrf_token, sign_in, sign_up

BUDGET_BYTES = 60 * 1024
GZIP = {"Accept-Encoding": "gzip"}
LOAN_SAT = 20_000
REQUEST = {"amount_sat": str(LOAN_SAT), "purpose": "transport", "rate": "24", "count": "4", "frequency": "weekly",
           "method": "annuity", "story": "A bicycle cart to carry vegetables to the market."}
_URL_IN_CSS = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*['"]?([^'")\s;]+)""", re.IGNORECASE)


class _Links(HTMLParser):
    """Everything a page makes the browser fetch as a script, stylesheet, font or other linked resource."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.other: list[str] = []  # preload, icon, manifest, fonts...
        self.inline_css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "script" and "src" in found:
            self.scripts.append(found["src"])
        elif tag == "link" and "href" in found:
            rels = found.get("rel", "").lower().split()
            (self.styles if "stylesheet" in rels else self.other).append(found["href"])
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.inline_css.append(data)


@dataclass
class Weight:
    page: str
    role: str
    path: str
    html_wire: int
    html_raw: int
    assets_wire: int
    assets_raw: int
    assets: tuple[str, ...]

    @property
    def total_wire(self) -> int:
        return self.html_wire + self.assets_wire

    @property
    def total_raw(self) -> int:
        return self.html_raw + self.assets_raw


def _fetch(client: TestClient, path: str) -> tuple[httpx.Response, int]:
    """The response and its size on the wire (gzip-encoded bytes when the app compressed it)."""
    response = client.get(path, headers=GZIP, follow_redirects=False)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    wire = response.num_bytes_downloaded
    if len(response.content) >= 1024:
        assert response.headers.get("content-encoding") == "gzip", f"{path} travels uncompressed"
    return response, wire


def _local(path: str, where: str) -> None:
    assert path.startswith("/static/") and not path.startswith("//"), \
        f"{where} loads {path!r}: scripts, styles and fonts must come from the app's own /static/"


def weigh(client: TestClient, page: str, role: str, path: str) -> Weight:
    response, html_wire = _fetch(client, path)
    links = _Links()
    links.feed(response.text)
    for url in links.scripts + links.styles + links.other:
        _local(url, path)
    for css in links.inline_css:
        for url in _URL_IN_CSS.findall(css):
            assert not url.startswith("data:"), f"{path}: inline CSS embeds {url[:40]}"
            _local(url, f"{path} (inline CSS)")
    assets_wire = assets_raw = 0
    for url in dict.fromkeys(links.scripts + links.styles):  # each once, in order
        asset, wire = _fetch(client, url)
        assets_wire += wire
        assets_raw += len(asset.content)
        if url.endswith(".css"):
            for inner in _URL_IN_CSS.findall(asset.text):
                if not inner.startswith("data:"):
                    _local(inner, url)
    return Weight(page, role, path, html_wire, len(response.content), assets_wire, assets_raw,
                  tuple(dict.fromkeys(links.scripts + links.styles)))


def table(weights: list[Weight]) -> str:
    head = f"{'page':<22} {'as':<9} {'HTML gz':>8} {'CSS+JS gz':>10} {'total gz':>9} {'raw total':>10}  path"
    lines = [head, "-" * len(head)]
    for w in weights:
        lines.append(f"{w.page:<22} {w.role:<9} {w.html_wire:>8,} {w.assets_wire:>10,} {w.total_wire:>9,} "
                     f"{w.total_raw:>10,}  {w.path}")
    lines.append(f"budget: {BUDGET_BYTES:,} bytes on the wire per page (HTML + linked CSS and JS, uncached)")
    return "\n".join(lines)


# --- the app with its dev node, and the people who use it ---------------------------------------------------


@pytest.fixture
def node_client(settings: Settings, database: Database, devnode_session: DevNode) -> Iterator[TestClient]:
    node_settings = settings.replace(cln_rpc=devnode_session.rpc_path("marketplace"), listener_wait_s=2,
                                     reconcile_every_s=1, pay_retry_for_s=5)
    app = create_app(node_settings, database=database, demo_wallet=devnode_session.adapter("wallet"))
    with TestClient(app) as client:
        yield client


def _wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


def _post(client: TestClient, path: str, data: dict[str, str], page: str) -> httpx.Response:
    response: httpx.Response = client.post(path, data={"csrf_token": csrf_token(client, page), **data},
                                           follow_redirects=False)
    return response


def _last_id(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text[:500]
    return int(response.headers["location"].rstrip("/").rsplit("/", 1)[1].split("?")[0])


def test_every_main_page_stays_under_60_kb_with_its_css_and_js(
        node_client: TestClient, database: Database, settings: Settings, devnode_session: DevNode) -> None:
    client = node_client
    weights: list[Weight] = []
    weights += [weigh(client, "home", "anyone", "/"), weigh(client, "sign in", "anyone", "/signin"),
                weigh(client, "sign up", "anyone", "/signup")]

    assert sign_up(client, "weight-lender@example.org", role="lender", display_name="Lena").status_code == 303
    weights.append(weigh(client, "dashboard", "lender", "/dashboard"))
    weights.append(weigh(client, "deposit", "lender", "/deposit"))
    deposit_id = _last_id(_post(client, "/deposit", {"amount_sat": "50000"}, "/deposit"))
    weights.append(weigh(client, "deposit invoice", "lender", f"/deposit/{deposit_id}"))
    paid = _post(client, f"/demo-wallet/pay/{deposit_id}", {}, f"/deposit/{deposit_id}")
    assert paid.status_code == 303, paid.text[:500]
    _wait_for(lambda: "Paid." in client.get(f"/deposit/{deposit_id}/status").text, "the deposit is credited")
    weights.append(weigh(client, "withdraw", "lender", "/withdraw"))

    assert sign_up(client, "weight-borrower@example.org", role="borrower", display_name="Bea").status_code == 303
    weights.append(weigh(client, "new request", "borrower", "/loans/new"))
    loan_id = _last_id(_post(client, "/loans/new", REQUEST, "/loans/new"))

    assert sign_in(client, "weight-lender@example.org").status_code == 303
    weights.append(weigh(client, "loans list", "lender", "/loans"))
    if client.get("/loans/market").status_code == 200:  # the lender's filtered market view, where present
        weights.append(weigh(client, "loans market", "lender", "/loans/market"))
    for amount in ("12000", "8000"):
        funded = _post(client, f"/loans/{loan_id}/fund", {"amount_sat": amount}, f"/loans/{loan_id}")
        assert funded.status_code == 303, funded.text[:500]
    weights.append(weigh(client, "loan page", "lender", f"/loans/{loan_id}"))

    assert sign_in(client, "weight-borrower@example.org").status_code == 303
    wallet = devnode_session.adapter("wallet")
    bolt11 = anyio.run(wallet.create_invoice, LOAN_SAT * 1000, f"weight-{time.time_ns()}", "loan", 600).bolt11
    disbursed = _post(client, f"/loans/{loan_id}/disburse", {"bolt11": bolt11}, f"/loans/{loan_id}")
    assert "Paid out." in disbursed.text, disbursed.text[:2000]
    weights.append(weigh(client, "loan page (active)", "borrower", f"/loans/{loan_id}"))
    repay = _post(client, f"/loans/{loan_id}/repay", {"amount_sat": ""}, f"/loans/{loan_id}")
    assert repay.status_code == 303, repay.text[:500]
    weights.append(weigh(client, "pay page", "borrower", repay.headers["location"]))

    create_user(database, settings, "weight-operator@example.org", PASSWORD, "operator", "Olga")
    assert sign_in(client, "weight-operator@example.org").status_code == 303
    weights.append(weigh(client, "operator", "operator", "/operator"))

    print("\n" + table(weights))
    heavy = [f"{w.page} ({w.path}): {w.total_wire:,} bytes" for w in weights if w.total_wire >= BUDGET_BYTES]
    assert not heavy, f"over the {BUDGET_BYTES:,}-byte budget: {heavy}"
