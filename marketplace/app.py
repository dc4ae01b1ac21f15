"""The application factory: routes, middleware, error handlers and the lifespan, wired once."""
from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from lightning.port import LightningPort
from marketplace.db.engine import Database
from marketplace.domain.errors import Refusal
from marketplace.services.analytics import AnalyticsMemo
from marketplace.services.market_cache import MarketCache
from marketplace.settings import Settings
from marketplace.web.i18n import LanguageMiddleware
from marketplace.web.csrf import CsrfMiddleware
from marketplace.web.errors import handle_http_exception, handle_refusal, handle_server_error
from marketplace.web.lifespan import LifespanExtra, build_lifespan
from marketplace.web.lightning import build_runtime, worker_extras
from marketplace.web.rendering import build_templates
from marketplace.web.routes import build_routes
from marketplace.web.security import SecurityHeadersMiddleware


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    lightning: LightningPort | None = None,
    demo_wallet: LightningPort | None = None,
    workers: bool = True,
    lifespan_extras: Sequence[LifespanExtra] = (),
) -> Starlette:
    """The ASGI app. With no `database`, the lifespan opens (and later disposes) one from settings.

    With no `lightning` port, the CLN adapter on `settings.cln_rpc_path` is used.
    `workers` starts the payment listener and the reconciler with the app.
    `lifespan_extras` are entered at start-up once `app.state.database` is ready;
    wrap a long-running coroutine with `marketplace.web.lifespan.background_task`.
    """
    # Caller's extras first: the embedded dev node must be up before the listener starts.
    extras = [*lifespan_extras, *(worker_extras(settings) if workers else [])]
    app = Starlette(
        routes=build_routes(),
        middleware=[
            # Outermost first: headers go on every answer, including CSRF refusals.
            Middleware(GZipMiddleware, minimum_size=500),  # HTML, CSS and htmx travel compressed
            Middleware(SecurityHeadersMiddleware),
            Middleware(LanguageMiddleware),  # before CSRF: its refusals are in the reader's language too
            Middleware(CsrfMiddleware),
        ],
        exception_handlers={
            Refusal: handle_refusal,
            HTTPException: handle_http_exception,
            Exception: handle_server_error,
        },
        lifespan=build_lifespan(settings, database, extras),
    )
    app.state.settings = settings
    app.state.templates = build_templates()
    app.state.market_cache = MarketCache()
    app.state.analytics_memo = AnalyticsMemo()
    app.state.jinja = app.state.templates.env
    app.state.lightning = build_runtime(settings, lightning, demo_wallet)
    return app
