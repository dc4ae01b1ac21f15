"""Settings come from the environment and flags, once; production refuses to guess a secret."""
from __future__ import annotations

from pathlib import Path

import pytest

from marketplace.settings import SettingsError, settings_from_env


def test_embedded_default_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    env = {"MICROLEND_DATA_DIR": str(tmp_path / "data")}
    first = settings_from_env(env)
    second = settings_from_env(env)
    assert len(first.secret_key) >= 40
    assert first.secret_key == second.secret_key
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0
    assert first.database_url == f"sqlite:///{tmp_path / 'data' / 'microlend.sqlite3'}"
    assert first.devnode_dir == tmp_path / "data" / "devnode"


def test_production_without_a_secret_is_an_error() -> None:
    env = {"MICROLEND_MODE": "production", "MICROLEND_DATABASE_URL": "postgresql://db/x",
           "MICROLEND_CLN_RPC": "/run/lightning-rpc"}
    with pytest.raises(SettingsError, match="MICROLEND_SECRET_KEY"):
        settings_from_env(env)
    settings = settings_from_env({**env, "MICROLEND_SECRET_KEY": "s" * 40})
    assert settings.mode == "production" and settings.secret_key == "s" * 40


def test_cli_flags_override_the_environment(tmp_path: Path) -> None:
    env = {"MICROLEND_PORT": "9000", "MICROLEND_DATA_DIR": str(tmp_path), "MICROLEND_HTTPS": "true"}
    settings = settings_from_env(env, {"port": 8123, "host": None})
    assert settings.port == 8123 and settings.host == "127.0.0.1" and settings.https


@pytest.mark.parametrize("env, message", [
    ({"MICROLEND_PORT": "eighty"}, "whole number"),
    ({"MICROLEND_MODE": "staging"}, "embedded"),
])
def test_bad_values_are_named(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_env({**env, "MICROLEND_DATA_DIR": str(tmp_path)})
