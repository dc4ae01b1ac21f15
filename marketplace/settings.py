"""The one settings object, built once from the environment and CLI flags.

No other module reads `os.environ`: the CLI builds `Settings` and passes it down.
"""
from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from marketplace.domain import numbers

Mode = Literal["embedded", "production"]

ENV_PREFIX = "MICROLEND_"


class SettingsError(Exception):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    mode: Mode = "embedded"
    data_dir: Path = Path("data")
    database_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Served behind https: session cookies get the Secure flag.
    https: bool = False
    # Where people reach the marketplace (https://microlend.example): Lightning Addresses and LNURL pay codes
    # are built on it. Empty: the address each request came to.
    public_url: str = ""
    # Proxies whose X-Forwarded-For is believed (comma-separated addresses or networks, or "*"), passed to
    # uvicorn and applied by the app: behind any other proxy every per-address limit would be site-wide.
    trusted_proxies: str = "127.0.0.1"
    cln_rpc: str = ""
    # Embedded default: the dev node the app starts as a child process.
    devnode_dir: Path = Path("data/devnode")
    demo_wallet_node: str = "wallet"
    # Sign-in throttling (marketplace.domain.throttling.SignInPolicy): failures an (account, address) pair
    # makes before waiting, the first wait (doubling, at most the window), failures one address may make
    # on any accounts, and failures on one account (from anywhere) that put it on alert.
    signin_free_failures: int = 3
    signin_delay_s: int = 2
    signin_failures_per_address: int = 20
    signin_failures_per_account: int = 10
    signin_window_s: int = 900
    session_lifetime_s: int = 14 * 24 * 3600
    argon2_time_cost: int = 3
    # Password hashes (argon2id, argon2_memory_kib each) running at once, and sign-ins/sign-ups waiting for
    # one; beyond that a request gets 429 at once (marketplace.services.password_pool). Keep workers plus
    # waiting below signin_failures_per_address: a sign-in counts as a failure until its password is checked.
    password_hash_workers: int = 2
    password_hash_waiting: int = 16
    # Of those places, how many one network address may hold at once: one address's flood cannot fill the gate.
    password_hash_per_address: int = 4
    # Sign-ups one network address may start in a window.
    signup_per_address: int = 10
    signup_window_s: int = 3600
    # Lightning money limits (sat) and timings.
    deposit_min_sat: int = 1
    deposit_max_sat: int = 10_000_000
    withdrawal_min_sat: int = 1
    invoice_expiry_s: int = 3600
    # Held on top of a withdrawal and passed to the node as `maxfee`.
    fee_reserve_min_msat: int = 10_000
    fee_reserve_ppm: int = 5_000
    pay_retry_for_s: int = 60
    listener_page_size: int = 1000
    listener_wait_s: int = 30
    reconcile_every_s: int = 30
    # Standby processes try for the worker lock this often (the failover delay's main part).
    leader_poll_s: float = 1.0
    # A payment with no outcome whose hold is this old is handed to the node again
    # by the reconciler (a younger one may still be on its way from its caller).
    resubmit_after_s: int = 5
    # Added to pay_retry_for_s: past it no attempt of ours can still run at the node,
    # so a clear failure (or an expired invoice) may release the hold.
    pay_quiet_margin_s: int = 60
    # Lending: limits, funding window, platform fee, delinquency policy.
    loan_min_sat: int = 10_000
    loan_max_sat: int = 5_000_000
    loan_max_rate_bps: int = 6_000
    loan_max_count: int = 365
    loan_first_max_sat: int = 100_000
    loan_growth_bps: int = 5_000
    note_min_sat: int = 1_000
    funding_days: int = 14
    # A funded request not disbursed within this many days lapses; the pledges go back.
    disbursement_days: int = 7
    # The platform's share of the lenders' income (interest and late fees), in basis points: 10 %.
    service_fee_bps: int = 1000
    grace_days: int = 15
    default_after_days: int = 60
    write_off_after_days: int = 120
    late_fee_bps: int = 200
    late_fee_flat_msat: int = 0
    aging_every_s: int = 3600
    # How often the auto-invest engine looks at its queue (a run only when something asked for one).
    autoinvest_every_s: int = 2
    # Invoices one user may ask for in a window (deposits and repayments together).
    invoice_limit_count: int = 30
    invoice_limit_window_s: int = 600
    # Invoices not yet paid nor expired, marketplace-wide: per network address (every account on it), and in all.
    invoice_unpaid_per_address: int = 50
    invoice_unpaid_total: int = 10_000
    # Invoices made through a loan's pay code (by anyone holding it) have their own budget per loan, apart
    # from the borrower's own: so many open at once, and each lives this long unless paid.
    paycode_open_per_loan: int = 10
    paycode_invoice_expiry_s: int = 600
    # Auto-invest rule changes one lender may save in a window.
    autoinvest_changes_per_window: int = 30
    autoinvest_changes_window_s: int = 600
    # API tokens live at most this many days (a shorter life may be asked for).
    api_token_lifetime_days: int = 90
    # Crash tests only: the process kills itself (SIGKILL) at this named point
    # (deposit:before-credit, repayment:mid-credit, withdrawal:after-hold, disbursement:after-pay,
    # autoinvest:mid-run, ...: tests/crash/trials.py NAMED_POINTS), or at the one named in `file:<path>`.
    fault_injection: str = ""
    argon2_memory_kib: int = 65536
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_embedded(self) -> bool:
        return self.mode == "embedded"

    @property
    def sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix):])
        return None

    @property
    def cln_rpc_path(self) -> str:
        """The lightningd socket: configured, or the dev node's marketplace node."""
        if self.cln_rpc:
            return self.cln_rpc
        return str(self.devnode_dir / "marketplace" / "lightning-rpc")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


_INT_FIELDS = {
    "PORT": "port",
    "SIGNIN_FREE_FAILURES": "signin_free_failures",
    "SIGNIN_DELAY_S": "signin_delay_s",
    "SIGNIN_FAILURES_PER_ACCOUNT": "signin_failures_per_account",
    "SIGNIN_FAILURES_PER_ADDRESS": "signin_failures_per_address",
    "SIGNIN_WINDOW_S": "signin_window_s",
    "SESSION_LIFETIME_S": "session_lifetime_s",
    "ARGON2_TIME_COST": "argon2_time_cost",
    "ARGON2_MEMORY_KIB": "argon2_memory_kib",
    "PASSWORD_HASH_WORKERS": "password_hash_workers",
    "PASSWORD_HASH_WAITING": "password_hash_waiting",
    "PASSWORD_HASH_PER_ADDRESS": "password_hash_per_address",
    "SIGNUP_PER_ADDRESS": "signup_per_address",
    "SIGNUP_WINDOW_S": "signup_window_s",
    "DEPOSIT_MIN_SAT": "deposit_min_sat",
    "DEPOSIT_MAX_SAT": "deposit_max_sat",
    "WITHDRAWAL_MIN_SAT": "withdrawal_min_sat",
    "INVOICE_EXPIRY_S": "invoice_expiry_s",
    "FEE_RESERVE_MIN_MSAT": "fee_reserve_min_msat",
    "FEE_RESERVE_PPM": "fee_reserve_ppm",
    "PAY_RETRY_FOR_S": "pay_retry_for_s",
    "PAY_QUIET_MARGIN_S": "pay_quiet_margin_s",
    "RESUBMIT_AFTER_S": "resubmit_after_s",
    "LISTENER_PAGE_SIZE": "listener_page_size",
    "LISTENER_WAIT_S": "listener_wait_s",
    "RECONCILE_EVERY_S": "reconcile_every_s",
    "LOAN_MIN_SAT": "loan_min_sat",
    "LOAN_MAX_SAT": "loan_max_sat",
    "LOAN_MAX_RATE_BPS": "loan_max_rate_bps",
    "LOAN_MAX_COUNT": "loan_max_count",
    "LOAN_FIRST_MAX_SAT": "loan_first_max_sat",
    "LOAN_GROWTH_BPS": "loan_growth_bps",
    "NOTE_MIN_SAT": "note_min_sat",
    "FUNDING_DAYS": "funding_days",
    "DISBURSEMENT_DAYS": "disbursement_days",
    "SERVICE_FEE_BPS": "service_fee_bps",
    "GRACE_DAYS": "grace_days",
    "DEFAULT_AFTER_DAYS": "default_after_days",
    "WRITE_OFF_AFTER_DAYS": "write_off_after_days",
    "LATE_FEE_BPS": "late_fee_bps",
    "LATE_FEE_FLAT_MSAT": "late_fee_flat_msat",
    "AGING_EVERY_S": "aging_every_s",
    "AUTOINVEST_EVERY_S": "autoinvest_every_s",
    "INVOICE_LIMIT_COUNT": "invoice_limit_count",
    "INVOICE_LIMIT_WINDOW_S": "invoice_limit_window_s",
    "INVOICE_UNPAID_PER_ADDRESS": "invoice_unpaid_per_address",
    "INVOICE_UNPAID_TOTAL": "invoice_unpaid_total",
    "PAYCODE_OPEN_PER_LOAN": "paycode_open_per_loan",
    "PAYCODE_INVOICE_EXPIRY_S": "paycode_invoice_expiry_s",
    "AUTOINVEST_CHANGES_PER_WINDOW": "autoinvest_changes_per_window",
    "AUTOINVEST_CHANGES_WINDOW_S": "autoinvest_changes_window_s",
    "API_TOKEN_LIFETIME_DAYS": "api_token_lifetime_days",
}
_STR_FIELDS = {
    "DATABASE_URL": "database_url",
    "SECRET_KEY": "secret_key",
    "HOST": "host",
    "CLN_RPC": "cln_rpc",
    "DEMO_WALLET_NODE": "demo_wallet_node",
    "FAULT_INJECTION": "fault_injection",
    "PUBLIC_URL": "public_url",
    "TRUSTED_PROXIES": "trusted_proxies",
}
_FLOAT_FIELDS = {"LEADER_POLL_S": "leader_poll_s"}
_PATH_FIELDS = {"DATA_DIR": "data_dir", "DEVNODE_DIR": "devnode_dir"}


def settings_from_env(
    environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read MICROLEND_* variables, then apply CLI overrides (non-None values win)."""
    values: dict[str, Any] = {}
    for suffix, name in _INT_FIELDS.items():
        raw = environ.get(ENV_PREFIX + suffix)
        if raw is not None and raw != "":
            try:
                values[name] = numbers.whole(raw, label=suffix)
            except numbers.NumberRefused:
                raise SettingsError(f"{ENV_PREFIX}{suffix} must be a whole number, not {raw!r}") from None
    for suffix, name in _FLOAT_FIELDS.items():
        raw = environ.get(ENV_PREFIX + suffix)
        if raw:
            try:
                values[name] = float(raw)
            except ValueError:
                raise SettingsError(f"{ENV_PREFIX}{suffix} must be a number of seconds, not {raw!r}")
    for suffix, name in _STR_FIELDS.items():
        raw = environ.get(ENV_PREFIX + suffix)
        if raw:
            values[name] = raw
    for suffix, name in _PATH_FIELDS.items():
        raw = environ.get(ENV_PREFIX + suffix)
        if raw:
            values[name] = Path(raw)
    mode = environ.get(ENV_PREFIX + "MODE", "embedded")
    if mode not in ("embedded", "production"):
        raise SettingsError(f"{ENV_PREFIX}MODE must be 'embedded' or 'production', not {mode!r}")
    values["mode"] = mode
    if ENV_PREFIX + "HTTPS" in environ:
        values["https"] = _flag(environ[ENV_PREFIX + "HTTPS"])
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    if "devnode_dir" not in values:
        values["devnode_dir"] = Path(values.get("data_dir", Path("data"))) / "devnode"
    return finalize(Settings(**values))


def settings_env(settings: Settings) -> dict[str, str]:
    """The MICROLEND_* variables that rebuild these settings (for worker processes started by the server)."""
    env = {ENV_PREFIX + "MODE": settings.mode, ENV_PREFIX + "HTTPS": "1" if settings.https else "0"}
    for fields in (_INT_FIELDS, _STR_FIELDS, _PATH_FIELDS, _FLOAT_FIELDS):
        for suffix, name in fields.items():
            value = getattr(settings, name)
            if value != "":
                env[ENV_PREFIX + suffix] = str(value)
    return env


def finalize(settings: Settings) -> Settings:
    """Fill embedded defaults (database file, generated secret) or refuse in production."""
    if settings.password_hash_workers < 1:
        raise SettingsError(f"{ENV_PREFIX}PASSWORD_HASH_WORKERS must be at least 1")
    if settings.password_hash_per_address < 1:
        raise SettingsError(f"{ENV_PREFIX}PASSWORD_HASH_PER_ADDRESS must be at least 1")
    if not re.fullmatch(r"\*|[0-9A-Fa-f.:/]+(\s*,\s*[0-9A-Fa-f.:/]+)*", settings.trusted_proxies.strip()):
        raise SettingsError(f"{ENV_PREFIX}TRUSTED_PROXIES must be addresses or networks separated by commas "
                            f"(127.0.0.1,10.0.0.0/8) or *, not {settings.trusted_proxies!r}")
    if settings.public_url and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", settings.public_url):
        raise SettingsError(f"{ENV_PREFIX}PUBLIC_URL must be a plain https://host (or http://host:port) address "
                            f"with no path, not {settings.public_url!r}")
    if settings.mode == "production":
        if settings.fault_injection:
            raise SettingsError(f"{ENV_PREFIX}FAULT_INJECTION is for crash tests and refused in production mode")
        if not settings.secret_key:
            raise SettingsError(
                f"{ENV_PREFIX}SECRET_KEY is required in production mode "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if not settings.database_url:
            raise SettingsError(f"{ENV_PREFIX}DATABASE_URL is required in production mode")
        if not settings.cln_rpc:
            raise SettingsError(f"{ENV_PREFIX}CLN_RPC (the lightningd socket) is required in production mode")
        return settings
    changes: dict[str, Any] = {}
    if not settings.database_url:
        changes["database_url"] = f"sqlite:///{settings.data_dir / 'microlend.sqlite3'}"
    if not settings.secret_key:
        changes["secret_key"] = _embedded_secret(settings.data_dir)
    return settings.replace(**changes) if changes else settings


def _embedded_secret(data_dir: Path) -> str:
    """Generated once and kept in the data dir, so sessions survive restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
