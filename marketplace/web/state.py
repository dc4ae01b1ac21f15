"""Typed access to what the app factory and lifespan keep on `app.state`."""
from __future__ import annotations

from pathlib import Path

from starlette.requests import HTTPConnection
from starlette.templating import Jinja2Templates

from marketplace.db.engine import Database
from marketplace.services.analytics import AnalyticsMemo
from marketplace.services.market_cache import MarketCache
from marketplace.settings import Settings

# templates/ and static/ sit at the repository root, beside the package.
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES_DIR = REPO_ROOT / "templates"
STATIC_DIR = REPO_ROOT / "static"


def database_of(conn: HTTPConnection) -> Database:
    database: Database = conn.app.state.database
    return database


def settings_of(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


def templates_of(conn: HTTPConnection) -> Jinja2Templates:
    templates: Jinja2Templates = conn.app.state.templates
    return templates


def market_cache_of(conn: HTTPConnection) -> MarketCache:
    cache: MarketCache = conn.app.state.market_cache
    return cache


def analytics_memo_of(conn: HTTPConnection) -> AnalyticsMemo:
    memo: AnalyticsMemo = conn.app.state.analytics_memo
    return memo
