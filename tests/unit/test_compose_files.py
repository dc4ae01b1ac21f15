"""The Docker stack's files agree with each other and with the app's settings.

No Docker engine is needed (nor PyYAML, which is not a dependency): a tiny
reader below understands the block-style subset of YAML docker-compose.yml is
written in. When PyYAML happens to be installed, a test checks the reader
against it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_SCRIPT = ROOT / "docker" / "init-regtest.sh"
APP_ENTRYPOINT = ROOT / "docker" / "app-entrypoint.sh"
CLN_START = ROOT / "docker" / "cln-marketplace-start.sh"

SERVICES = {"bitcoind", "cln-marketplace", "cln-wallet", "postgres", "app"}


# --- a tiny reader for block-style YAML -----------------------------------------

def _strip_comment(line: str) -> str:
    """Drop a trailing `# comment` that is not inside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(raw: str) -> Any:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if raw.startswith("[") and raw.endswith("]"):
        return [_scalar(part) for part in raw[1:-1].split(",") if part.strip()]
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if raw in ("true", "false"):
        return raw == "true"
    return raw


def read_yaml(text: str) -> Any:
    """Mappings, lists and scalars by indentation; anchors are dropped, aliases kept as '*name'."""
    lines = []
    for line in text.splitlines():
        stripped = _strip_comment(line)
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip(" ")), stripped.strip()))

    def parse(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            items: list[Any] = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                items.append(_scalar(lines[i][1][2:]))
                i += 1
            return items, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            key, _, rest = lines[i][1].partition(":")
            rest = re.sub(r"^\s*&[\w-]+\s*", "", rest).strip()
            i += 1
            if rest:
                mapping[_scalar(key)] = _scalar(rest)
            elif i < len(lines) and lines[i][0] > indent:
                mapping[_scalar(key)], i = parse(i, lines[i][0])
            elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                mapping[_scalar(key)], i = parse(i, indent)  # a list at the key's own indent
            else:
                mapping[_scalar(key)] = None
        return mapping, i

    value, _ = parse(0, lines[0][0])
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = read_yaml(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def mounts_of(service: dict[str, Any]) -> dict[str, str]:
    """container path -> source (a named volume or a host path)."""
    result = {}
    for item in service.get("volumes") or []:
        source, target = item.split(":")[:2]
        result[target] = source
    return result


# --- docker-compose.yml -----------------------------------------------------------

def test_compose_names_the_five_services(compose: dict[str, Any]) -> None:
    assert SERVICES <= set(compose["services"])


def test_the_app_runs_in_production_mode_against_postgres_and_the_node(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    env = env_of(app)
    assert env["MICROLEND_MODE"] == "production"
    assert env["MICROLEND_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["MICROLEND_DATABASE_URL"]
    assert env["MICROLEND_SECRET_KEY"] == "${MICROLEND_SECRET_KEY:?set MICROLEND_SECRET_KEY}"
    assert env["MICROLEND_CLN_RPC"].endswith("/lightning-rpc")
    assert app["build"]["context"] == "."


def test_the_apps_socket_path_is_inside_the_marketplace_nodes_shared_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    node = services["cln-marketplace"]
    network = env_of(node)["LIGHTNINGD_NETWORK"]
    assert network == "regtest"
    node_volume = mounts_of(node)["/root/.lightning"]  # the image's LIGHTNINGD_DATA
    app_mounts = mounts_of(services["app"])
    [app_dir] = [target for target, source in app_mounts.items() if source == node_volume]
    assert env_of(services["app"])["MICROLEND_CLN_RPC"] == f"{app_dir}/{network}/lightning-rpc"
    # The node makes its socket usable by the app's group (see docker/cln-marketplace-start.sh).
    assert "--rpc-file-mode=0660" in node["command"]
    assert "cln-marketplace-start.sh" in " ".join(node["entrypoint"])


def test_the_app_is_published_on_localhost_only_and_waits_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    assert app["ports"] == ["127.0.0.1:8000:8000"]
    for dependency in ("postgres", "cln-marketplace"):
        assert app["depends_on"][dependency]["condition"] == "service_healthy"
    for name in ("bitcoind", "cln-marketplace", "cln-wallet", "postgres"):
        assert "healthcheck" in compose["services"][name], name
        assert "ports" not in compose["services"][name], f"{name} should not be published"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "image" in service and "build" not in service:
            image = service["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
    cln = compose["services"]["cln-marketplace"]["image"]
    match = re.fullmatch(r"elementsproject/lightningd:v(\d+)\.(\d+)(?:\.\d+)?", cln)
    assert match, cln
    assert (int(match[1]), int(match[2])) >= (24, 11), "xpay needs Core Lightning v24.11+"
    assert compose["services"]["cln-wallet"]["image"] == cln
    # The release the real-node tier runs: what CI tests is what compose deploys.
    from lightning.regtest import CORE_LIGHTNING_RELEASE

    assert cln == f"elementsproject/lightningd:{CORE_LIGHTNING_RELEASE}"
    assert compose["services"]["init"]["image"] == cln
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")


def test_both_nodes_use_regtest_and_reach_bitcoind(compose: dict[str, Any]) -> None:
    assert "-regtest=1" in compose["services"]["bitcoind"]["command"]
    for name in ("cln-marketplace", "cln-wallet"):
        node = compose["services"][name]
        assert env_of(node)["LIGHTNINGD_NETWORK"] == "regtest"
        assert "--bitcoin-rpcconnect=bitcoind" in node["command"]


def test_the_init_step_mounts_both_nodes_and_its_script(compose: dict[str, Any]) -> None:
    init = compose["services"]["init"]
    assert init["profiles"] == ["init"]
    mounts = mounts_of(init)
    env = env_of(init)
    assert mounts[env["MARKETPLACE_LIGHTNING_DIR"]] == mounts_of(compose["services"]["cln-marketplace"])["/root/.lightning"]
    assert mounts[env["WALLET_LIGHTNING_DIR"]] == mounts_of(compose["services"]["cln-wallet"])["/root/.lightning"]
    assert any(source == "./docker/init-regtest.sh" for source in mounts.values())


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for source in mounts_of(service).values():
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: {source}"


def test_the_tiny_reader_agrees_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml")
    full = yaml.safe_load(COMPOSE.read_text())
    ours = read_yaml(COMPOSE.read_text())
    for name in SERVICES | {"init"}:
        theirs = full["services"][name]
        mine = ours["services"][name]
        for key in ("image", "command", "entrypoint", "environment", "volumes", "ports", "depends_on"):
            if key in theirs and not (key == "environment" and "<<" in mine.get(key, {})):
                assert mine[key] == theirs[key], (name, key)


# --- Dockerfile and scripts ---------------------------------------------------------

def test_dockerfile_uses_a_python_311_or_312_base_and_an_editable_install() -> None:
    text = DOCKERFILE.read_text()
    [base] = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert re.fullmatch(r"python:3\.1[12](\.\d+)?-slim(-\w+)?", base), base
    assert re.search(r"^COPY \. /app$", text, flags=re.MULTILINE)
    assert "pip install -e ." in text
    assert re.search(r"^EXPOSE 8000$", text, flags=re.MULTILINE)
    [user] = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")


def test_the_app_entrypoint_migrates_then_serves() -> None:
    text = APP_ENTRYPOINT.read_text()
    upgrade = text.index("microlend db upgrade")
    serve = text.index("microlend serve --host 0.0.0.0 --port 8000")
    assert upgrade < serve
    assert "docker/app-entrypoint.sh" in DOCKERFILE.read_text()


def test_local_state_stays_out_of_the_image() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    # data/ holds the embedded secret key and SQLite file; .venv is this machine's.
    assert {".git", ".venv", "data"} <= ignored


@pytest.mark.parametrize("script", [INIT_SCRIPT, CLN_START], ids=lambda p: p.name)
def test_bash_scripts_parse(script: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_app_entrypoint_parses_as_posix_sh() -> None:
    result = subprocess.run(["sh", "-n", str(APP_ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_init_script_does_each_documented_step() -> None:
    text = INIT_SCRIPT.read_text()
    for needle in ("createwallet", "generatetoaddress 101", "newaddr", "connect", "fundchannel",
                   "push_msat", "mine 6", "CHANNELD_NORMAL", "listpeerchannels"):
        assert needle in text, needle
