"""The Lightning side of the running app: the port, node facts, workers and their health."""
from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from lightning.cln import ClnAdapter
from lightning.port import LightningPort
from marketplace.services.lightning_calls import NodeFacts
from marketplace.settings import Settings
from marketplace.web.lifespan import LifespanExtra, background_task
from marketplace.workers.health import WorkerHealth
from marketplace.workers.supervisor import WorkerSet, run_workers_when_leader


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
    autoinvest_health: WorkerHealth = field(default_factory=lambda: WorkerHealth("auto-invest engine"))


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
    """The background workers (listener, reconciler, aging, notices), run while this process holds the worker lock."""

    async def work(app: Starlette) -> None:
        runtime = lightning_of_app(app)
        await run_workers_when_leader(WorkerSet(
            app.state.database, runtime.port, settings, runtime.listener_health, runtime.reconciler_health,
            runtime.aging_health, runtime.notices_health, runtime.autoinvest_health))

    return [background_task(work)]


def lightning_of_app(app: Starlette) -> LightningRuntime:
    runtime: LightningRuntime = app.state.lightning
    return runtime
