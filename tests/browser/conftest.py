"""Browser tests: the real app as a subprocess, driven by Playwright in Debian's Chromium.

- `app`: `python -m marketplace.cli run --no-demo --port <free>` with
  MICROLEND_DATA_DIR=<tmp>/data, i.e. the embedded default exactly as
  `make run` starts it: migrations, its own SQLite file, its own dev node
  child (wallet socket `<data>/devnode/wallet/lightning-rpc`). One for tests/browser.
- `browser`: Chromium from /usr/bin/chromium (Playwright's own browser download
  does not work on these machines). Missing with CI=true is a failure, not a skip.
- `browsing`: makes browser contexts (one per person) and collects script
  errors and CSP violations from every page they open.
- `phone`: a page on a 360x740 touch screen, for the layout checks.

Screenshots go to `test-artifacts/browser/` (git-ignored).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
START_TIMEOUT_S = 60.0
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(reason: str) -> None:
    """In CI the browser tests must run: fail. Locally, skip with the fix in the reason."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}; .ci/run installs Debian's chromium before `make test`", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli() -> list[str]:
    """`.venv/bin/microlend` (the console script next to this interpreter), or `python -m marketplace.cli`."""
    script = Path(sys.executable).parent / "microlend"
    return [str(script)] if script.exists() else [sys.executable, "-m", "marketplace.cli"]


@dataclass
class RunningApp:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    @property
    def devnode_dir(self) -> Path:
        return self.data_dir / "devnode"

    @property
    def wallet_socket(self) -> Path:
        return self.devnode_dir / "wallet" / "lightning-rpc"

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def microlend(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        """Run the CLI against this app's data dir, as an operator at a shell would; its stdout."""
        done = subprocess.run([*_cli(), *args], input=stdin, capture_output=True, text=True, env=self.env,
                              cwd=REPO_ROOT, timeout=timeout)
        assert done.returncode == 0, f"microlend {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return done.stdout

    def wallet_invoice(self, amount_sat: int) -> str:
        """A BOLT11 from the dev node's wallet, as the borrower's own wallet app would make it."""
        return self.microlend("wallet", "invoice", str(amount_sat), "--data-dir", str(self.devnode_dir)).strip()

    def wallet_pay(self, bolt11: str) -> str:
        return self.microlend("wallet", "pay", bolt11, "--data-dir", str(self.devnode_dir))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM as an operator would (the app stops its dev node child); SIGKILL what is left of the group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:  # the group is ours alone (start_new_session): a dev node child that outlived its app
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextlib.contextmanager
def running_app(tmp_path_factory: pytest.TempPathFactory, name: str = "browser-app") -> Iterator[RunningApp]:
    """The app as `make run` starts it, on a free port, with its own data dir and dev node."""
    root = tmp_path_factory.mktemp(name)
    data_dir = root / "data"
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MICROLEND_")}
    env["MICROLEND_DATA_DIR"] = str(data_dir)
    env["MICROLEND_SIGNUP_PER_ADDRESS"] = "1000"  # every person in these tests signs up from 127.0.0.1
    log_path = root / "app.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "marketplace.cli", "run", "--no-demo", "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    running = RunningApp(f"http://127.0.0.1:{port}", data_dir, process, log_path, env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the app exited ({process.returncode}) at start:\n{running.log()}", pytrace=False)
            try:
                if httpx.get(running.url("/"), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app gave no 200 on / within {START_TIMEOUT_S:.0f} s:\n{running.log()}",
                            pytrace=False)
            time.sleep(0.2)
        assert running.wallet_socket.exists(), "the app started no dev node wallet"
        yield running
    finally:
        _stop(process)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, ARTIFACTS / f"{name}.log")


@pytest.fixture(scope="package")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory) as running:
        yield running


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this
# thread while it is open, and later tests that call anyio.run() / asyncio.run() would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class Browsing:
    """Browser contexts for one test, each a separate person with their own cookies."""

    browser: Any
    app: RunningApp
    errors: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def context(self, *, phone: bool = False, storage_state: Any = None) -> Any:
        options: dict[str, Any] = {"base_url": self.app.base_url, "viewport": PHONE if phone else DESKTOP}
        if phone:
            options.update(is_mobile=True, has_touch=True)
        if storage_state is not None:
            options["storage_state"] = storage_state
        context = self.browser.new_context(**options)
        context.set_default_timeout(15_000)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.app.base_url)
        context.on("page", self._watch)
        self.contexts.append(context)
        return context

    def page(self, *, phone: bool = False) -> Any:
        return self.context(phone=phone).new_page()

    def _watch(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: script error: {error}"))

        def console(message: Any) -> None:
            text = message.text
            if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text
                                            or "htmx" in text.lower()):
                self.errors.append(f"{page.url}: {text}")

        page.on("console", console)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


@pytest.fixture
def browsing(browser: Any, app: RunningApp) -> Iterator[Browsing]:
    session = Browsing(browser, app)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def phone(browsing: Browsing) -> Any:
    """A page on a 360x740 touch screen (a cheap phone), signed out."""
    return browsing.page(phone=True)
