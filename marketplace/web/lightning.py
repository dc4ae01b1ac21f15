"""The Lightning side of the running app: the port, node facts, workers and their health."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from lightning.cln import ClnAdapter
from lightning.port import LightningPort
from marketplace.services.lightning_calls import NodeFacts
from marketplace.settings import Settings
from marketplace.web.lifespan import LifespanExtra, background_task
from marketplace.workers.health import WorkerHealth
from marketplace.workers.listener import PaymentListener, run_as_leader
from marketplace.workers.reconciler import reconcile_outgoing

log = logging.getLogger("microlend.workers")


@dataclass
class LightningRuntime:
    port: LightningPort
    facts: NodeFacts
    # The embedded default's demo wallet (a dev node); None in production.
    demo_wallet: LightningPort | None
    listener_health: WorkerHealth = field(default_factory=lambda: WorkerHealth("payment listener"))
    reconciler_health: WorkerHealth = field(default_factory=lambda: WorkerHealth("payment reconciler"))
    aging_health: WorkerHealth = field(default_factory=lambda: WorkerHealth("loan aging (daily job)"))
    notices_health: WorkerHealth = field(default_factory=lambda: WorkerHealth("reminders and notices"))


def build_runtime(settings: Settings, port: LightningPort | None = None,
                  demo_wallet: LightningPort | None = None) -> LightningRuntime:
    node = port or ClnAdapter(settings.cln_rpc_path)
    wallet = demo_wallet
    if wallet is None and settings.is_embedded and not settings.cln_rpc:
        wallet = ClnAdapter(str(settings.devnode_dir / settings.demo_wallet_node / "lightning-rpc"))
    if not settings.is_embedded:
        wallet = None  # never a demo button in production
    return LightningRuntime(port=node, facts=NodeFacts(node), demo_wallet=wallet)


def lightning_of(conn: HTTPConnection) -> LightningRuntime:
    runtime: LightningRuntime = conn.app.state.lightning
    return runtime


def worker_extras(settings: Settings) -> list[LifespanExtra]:
    """The payment listener and the reconciler, run for the app's whole life."""

    async def listen(app: Starlette) -> None:
        runtime = lightning_of_app(app)
        listener = PaymentListener(app.state.database, runtime.port, page_size=settings.listener_page_size,
                                   wait_s=settings.listener_wait_s, health=runtime.listener_health,
                                   crash_point=settings.fault_injection)
        await run_as_leader(listener)

    async def reconcile(app: Starlette) -> None:
        runtime = lightning_of_app(app)
        health = runtime.reconciler_health
        while True:
            try:
                resolved = await reconcile_outgoing(app.state.database, runtime.port, settings)
                health.count("resolved", resolved)
                health.ok()
            except Exception as exc:  # keep reconciling; the operator page shows the error
                log.exception("reconciler pass failed")
                health.failed(f"{type(exc).__name__}: {exc}", settings.reconcile_every_s)
            await anyio.sleep(settings.reconcile_every_s)

    async def age(app: Starlette) -> None:
        from marketplace.services.loans import age_loans

        runtime = lightning_of_app(app)
        health = runtime.aging_health
        while True:
            try:
                report = await anyio.to_thread.run_sync(age_loans, app.state.database, settings)
                health.count("state_changes", report.changed)
                health.ok()
            except Exception as exc:  # the job is idempotent: the next pass retries
                log.exception("aging pass failed")
                health.failed(f"{type(exc).__name__}: {exc}", settings.aging_every_s)
            await anyio.sleep(settings.aging_every_s)

    async def notify(app: Starlette) -> None:
        from marketplace.services.reminders import run_notices

        health = lightning_of_app(app).notices_health
        while True:
            try:
                queued, sent, failed = await anyio.to_thread.run_sync(run_notices, app.state.database, settings)
                health.count("queued", queued)
                health.count("sent", sent)
                health.count("failed", failed)
                health.ok()
            except Exception as exc:  # each notice is written once and sent once: the next pass resumes
                log.exception("notices pass failed")
                health.failed(f"{type(exc).__name__}: {exc}", settings.aging_every_s)
            await anyio.sleep(settings.aging_every_s)

    return [background_task(listen), background_task(reconcile), background_task(age), background_task(notify)]


def lightning_of_app(app: Starlette) -> LightningRuntime:
    runtime: LightningRuntime = app.state.lightning
    return runtime
