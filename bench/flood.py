"""Sign-up/sign-in flood: resident memory of a real `microlend serve` under 100 people at once.

Run by hand:  .venv/bin/python -m bench.flood [--people 100] [--database-url postgresql://...]

Two servers, one after the other, with the shipped argon2id cost (64 MiB, 3
passes): the shipped bounded pool (MICROLEND_PASSWORD_HASH_WORKERS=2,
..._WAITING=16), and as the baseline a pool as wide as the server's thread pool
(40 workers: hashing as it was before the pool). On each, 100 people sign up
at once, then the same 100 sign in at once; everyone turned away with 429
comes back after Retry-After until they are in. Meanwhile one signed-in
bystander keeps loading their dashboard. Memory is the server process's own
(/proc: VmRSS before, VmHWM peak); the ratio compares the growth.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import fresh_database, scratch_dir
from marketplace.settings import Settings
from tests.fixtures.served import Outcome, flood, serve

PASSWORD = "correct horse battery staple"
MIB = 1024


@dataclass(frozen=True)
class Run:
    label: str
    before_mib: float
    peak_mib: float
    after_mib: float
    signup_s: float
    signin_s: float
    refused: int  # 429 answers, counted over both floods
    bystander_ms: list[float]

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.before_mib


async def _bystander(base_url: str, stop: asyncio.Event, seen_ms: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        page = await client.get("/signup")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        await client.post("/signup", data={"csrf_token": token, "email": "bystander@example.org",
                                           "password": PASSWORD, "role": "lender"})
        while not stop.is_set():
            started = time.perf_counter()
            response = await client.get("/dashboard")
            seen_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            await asyncio.sleep(0.05)


async def _floods(base_url: str, people: int) -> tuple[float, float, list[Outcome], list[float]]:
    stop = asyncio.Event()
    seen: list[float] = []
    watcher = asyncio.ensure_future(_bystander(base_url, stop, seen))
    await asyncio.sleep(2)  # the bystander has signed up (and, on a fresh pool, nobody else is hashing)
    emails = [f"person{n}@example.org" for n in range(people)]
    started = time.perf_counter()
    ups = await flood(base_url, "signup", emails, PASSWORD, retry=True)
    middle = time.perf_counter()
    ins = await flood(base_url, "signin", emails, PASSWORD, retry=True)
    ended = time.perf_counter()
    stop.set()
    await watcher
    for kind, outcomes, ok in (("sign-up", ups, 303), ("sign-in", ins, 303)):
        bad = [o.status for o in outcomes if o.status != ok]
        if bad:
            raise RuntimeError(f"{len(bad)} {kind}s did not get through: {sorted(set(bad))}")
    return middle - started, ended - middle, ups + ins, seen


def run(label: str, root: Path, people: int, env: dict[str, str]) -> Run:
    # Everyone here comes from 127.0.0.1: lift the per-address limits, which would otherwise turn the crowd away
    # (a sign-in is counted as a failure until its password is checked, and 40 at once are more than 20).
    app = serve(root, {"MICROLEND_SIGNUP_PER_ADDRESS": str(10 * people + 10),
                       "MICROLEND_SIGNIN_FAILURES_PER_ADDRESS": str(10 * people + 10), **env})
    try:
        time.sleep(1)
        before = app.rss_kib() / MIB
        signup_s, signin_s, outcomes, seen = asyncio.run(_floods(app.base_url, people))
        peak, after = app.peak_kib() / MIB, app.rss_kib() / MIB
    finally:
        app.stop()
    refused = sum(o.tries - 1 for o in outcomes)
    return Run(label, before, peak, after, signup_s, signin_s, refused, seen)


def describe(result: Run, people: int) -> str:
    seen = sorted(result.bystander_ms)
    p50 = statistics.median(seen) if seen else float("nan")
    worst = seen[-1] if seen else float("nan")
    return (f"{result.label}: RSS {result.before_mib:.0f} MiB before, peak {result.peak_mib:.0f} MiB "
            f"(+{result.growth_mib:.0f} MiB), {result.after_mib:.0f} MiB after; {people} sign-ups in "
            f"{result.signup_s:.1f} s, {people} sign-ins in {result.signin_s:.1f} s; {result.refused} answers "
            f"were 429 (then retried); bystander's dashboard p50 {p50:.0f} ms, worst {worst:.0f} ms")


def _database_env(root: Path, server_url: str | None) -> dict[str, str]:
    """SQLite in the run's data dir, or a fresh database of its own on the PostgreSQL server."""
    if not server_url:
        return {}
    root.mkdir(parents=True, exist_ok=True)
    database = fresh_database(root, server_url)
    url = database.url
    database.dispose()
    return {"MICROLEND_DATABASE_URL": url}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args()
    root = scratch_dir()
    shipped = Settings()
    bounded = run(f"bounded pool ({shipped.password_hash_workers} workers, {shipped.password_hash_waiting} waiting)",
                  root / "bounded", args.people,
                  _database_env(root / "bounded", args.database_url))
    print(describe(bounded, args.people), flush=True)
    baseline = run("baseline (40 workers: no bound below the thread pool)", root / "baseline", args.people,
                   {**_database_env(root / "baseline", args.database_url),
                    "MICROLEND_PASSWORD_HASH_WORKERS": "40", "MICROLEND_PASSWORD_HASH_WAITING": "1000"})
    print(describe(baseline, args.people), flush=True)
    print(f"memory growth, bounded / baseline: {bounded.growth_mib:.0f} / {baseline.growth_mib:.0f} MiB = "
          f"{bounded.growth_mib / baseline.growth_mib:.2f}")


if __name__ == "__main__":
    main()
