"""Start-up and shut-down: the database, the schema check, and hooks for background workers."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from marketplace.db import migrate
from marketplace.db.engine import Database
from marketplace.settings import Settings

# A lifespan extra is entered after the database is ready (app.state.database
# is set) and exited, in reverse order, before the database is disposed.
LifespanExtra = Callable[[Starlette], AbstractAsyncContextManager[None]]


def background_task(work: Callable[[Starlette], Coroutine[Any, Any, None]]) -> LifespanExtra:
    """Run `work(app)` for the app's whole life; it is cancelled at shut-down.

    The Lightning payment listener is meant to be started this way:
    `create_app(settings, lifespan_extras=[background_task(listen)])`.
    """

    @asynccontextmanager
    async def running(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(work, app)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    return running


def build_lifespan(
    settings: Settings, database: Database | None, extras: Sequence[LifespanExtra]
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            db = database
            if db is None:
                db = Database(settings.database_url)
                # Only what we made is ours to dispose; a caller's database stays open.
                stack.callback(db.dispose)
            # Refuse to serve on a stale schema: DatabaseBehind says to run `microlend db upgrade`.
            await run_in_threadpool(migrate.ensure_current, db.engine)
            app.state.database = db
            for extra in extras:
                await stack.enter_async_context(extra(app))
            yield

    return lifespan
