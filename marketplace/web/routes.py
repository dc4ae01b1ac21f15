"""The route table: every address the app answers, in one place."""
from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from marketplace.web.state import STATIC_DIR
from marketplace.web.views import api, auth, money, pages
from marketplace.web.views.autoinvest import autoinvest_routes
from marketplace.web.views.card import card_routes
from marketplace.web.views.lender import lender_routes
from marketplace.web.views.api_v1 import api_routes
from marketplace.web.views.lnurl import lnurl_routes
from marketplace.web.views.loans import loan_routes
from marketplace.web.views.settings import settings_routes
from marketplace.web.views.notices import notice_routes
from marketplace.web.views.operator import operator_routes
from marketplace.web.views.privacy import privacy_routes


def build_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.home, methods=["GET"], name="home"),
        Route("/favicon.ico", pages.favicon, methods=["GET"], name="favicon"),
        Route("/signup", auth.signup_page, methods=["GET"], name="signup_page"),
        Route("/signup", auth.signup, methods=["POST"], name="signup"),
        Route("/signin", auth.signin_page, methods=["GET"], name="signin_page"),
        Route("/signin", auth.signin, methods=["POST"], name="signin"),
        Route("/signout", auth.signout, methods=["POST"], name="signout"),
        Route("/dashboard", pages.dashboard, methods=["GET"], name="dashboard"),
        Route("/deposit", money.deposit_page, methods=["GET"], name="deposit_page"),
        Route("/deposit", money.create_deposit, methods=["POST"], name="create_deposit"),
        Route("/deposit/{invoice_id}", money.deposit_invoice, methods=["GET"], name="deposit_invoice"),
        Route("/deposit/{invoice_id}/status", money.deposit_status, methods=["GET"], name="deposit_status"),
        Route("/deposit/{invoice_id}/events", money.deposit_events, methods=["GET"], name="deposit_events"),
        Route("/demo-wallet/pay/{invoice_id}", money.demo_wallet_pay, methods=["POST"], name="demo_wallet_pay"),
        Route("/withdraw", money.withdraw_page, methods=["GET"], name="withdraw_page"),
        Route("/withdraw", money.withdraw, methods=["POST"], name="withdraw"),
        *api_routes(), *settings_routes(), *privacy_routes(),  # first: /api/v1/me/balances here also takes a bearer token
        Route("/api/v1/me/balances", api.my_balances, methods=["GET"], name="api_my_balances"),
        *autoinvest_routes(),
        *lender_routes(),  # before loan_routes: /loans/market must win over /loans/{loan_id}
        *operator_routes(),  # /operator and its forms, /operator/outbox
        *notice_routes(),
        *lnurl_routes(), *card_routes(),  # /.well-known/lnurlp/{name}, /lnurlp/{name}/callback, /loans/{id}/card
        *loan_routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
