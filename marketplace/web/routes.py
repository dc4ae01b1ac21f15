"""The route table: every address the app answers, in one place."""
from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from marketplace.web.state import STATIC_DIR
from marketplace.web.views import api, auth, pages


def build_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.home, methods=["GET"], name="home"),
        Route("/signup", auth.signup_page, methods=["GET"], name="signup_page"),
        Route("/signup", auth.signup, methods=["POST"], name="signup"),
        Route("/signin", auth.signin_page, methods=["GET"], name="signin_page"),
        Route("/signin", auth.signin, methods=["POST"], name="signin"),
        Route("/signout", auth.signout, methods=["POST"], name="signout"),
        Route("/dashboard", pages.dashboard, methods=["GET"], name="dashboard"),
        Route("/operator", pages.operator, methods=["GET"], name="operator"),
        Route("/api/v1/me/balances", api.my_balances, methods=["GET"], name="api_my_balances"),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
