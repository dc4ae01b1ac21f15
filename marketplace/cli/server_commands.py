"""`microlend serve` (the server alone) and `microlend run` (what `make run` starts)."""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from marketplace.cli.common import fail, load_settings, settings_options
from marketplace.db import migrate
from marketplace.db.engine import Database
from marketplace.devnode_child import DevNodeChild, devnode_lifespan
from marketplace.web.lifespan import LifespanExtra
from marketplace.settings import Settings, settings_env


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parent = settings_options()
    for name, func, text in (
        ("serve", serve, "serve the marketplace (uvicorn); refuses a database whose migrations are behind"),
        ("run", run, "embedded default: apply migrations, then serve (what `make run` does)"),
    ):
        parser = subparsers.add_parser(name, parents=[parent], help=text)
        parser.add_argument("--host", help="default 127.0.0.1")
        parser.add_argument("--port", type=int, help="default 8000")
        if name == "serve":
            parser.add_argument("--workers", type=int, default=1, metavar="N",
                                help="N worker processes on one socket (default 1); one of them, whoever holds "
                                     "the worker lock, runs the payment listener and the background jobs")
        if name == "run":
            parser.add_argument("--no-demo", action="store_true", help="do not fill an empty database with demo data")
        parser.set_defaults(func=func)


def _settings(args: argparse.Namespace) -> Settings | None:
    return load_settings(args, host=args.host, port=args.port)


def _serve(settings: Settings, extras: Sequence[LifespanExtra] = (), workers: int = 1) -> int:
    from marketplace.app import create_app

    database = Database(settings.database_url)
    try:
        migrate.ensure_current(database.engine)
    except migrate.DatabaseBehind as exc:
        database.dispose()
        return fail(str(exc))
    if workers > 1:
        database.dispose()
        # Each worker process builds the same settings from the environment it inherits.
        os.environ.update(settings_env(settings))
        # uvicorn >= 0.55 binds the shared socket as TCP, so asyncio turns Nagle off on each connection
        # (tests/multiprocess/test_worker_socket.py); before, every kept-alive answer waited ~40 ms.
        config = uvicorn.Config("marketplace.cli.asgi:app_from_env", factory=True, workers=workers,
                                host=settings.host, port=settings.port, proxy_headers=True,
                                forwarded_allow_ips=settings.trusted_proxies, log_level="info")
        try:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        except KeyboardInterrupt:
            pass
        return 0
    app = create_app(settings, database=database, lifespan_extras=extras)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, proxy_headers=True,
                                forwarded_allow_ips=settings.trusted_proxies, log_level="info")
    finally:
        database.dispose()
    return 0


def serve_settings(settings: Settings) -> int:
    """Serve with these settings (one process): what `microlend regtest` runs once its network is up."""
    return _serve(settings)


def serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        return fail("--workers must be at least 1", 2)
    settings = _settings(args)
    return 2 if settings is None else _serve(settings, workers=args.workers)


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    database = Database(settings.database_url)
    try:
        migrate.upgrade(database.engine)
    finally:
        database.dispose()
    extras: list[LifespanExtra] = []
    if settings.is_embedded and not settings.cln_rpc:
        child = DevNodeChild(settings.devnode_dir)
        try:
            child.start()
        except RuntimeError as exc:
            return fail(str(exc))
        extras.append(devnode_lifespan(child))
        print(f"dev node: {settings.devnode_dir} (stops with the app; "
              "wallet: .venv/bin/microlend wallet pay BOLT11)")
        if not args.no_demo:
            from marketplace.demo import run_demo

            try:
                run_demo(settings)  # only fills an empty marketplace
            except Exception:
                child.stop()
                raise
    print(f"Microlend on http://{settings.host}:{settings.port}/  (database: {settings.database_url})")
    return _serve(settings, extras)
