"""The schema: SQLAlchemy Core tables, the source the Alembic migrations mirror."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    literal_column,
    text,
)

# SQLite only auto-numbers an INTEGER PRIMARY KEY; BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("display_name", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Set when the person asked for erasure: email, name and stories are gone, signing in is impossible.
    Column("erased_at", DateTime(timezone=True), nullable=True),
    # The language the person chose for the pages ("es"); NULL follows the browser's Accept-Language.
    Column("language", String(8), nullable=True),
    CheckConstraint("role IN ('lender', 'borrower', 'operator')", name="role"),
)

# Server-side sessions: the cookie holds a random token, the table its sha256.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("address", String(64), nullable=False, server_default=""),
)

signin_failures = Table(
    "signin_failures",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_signin_failures_email_at", "email", "at"),
    Index("ix_signin_failures_address_at", "address", "at"),
)

# Every sign-up that got as far as hashing a password, by network address: the sign-up rate limit.
signup_attempts = Table(
    "signup_attempts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("address", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_signup_attempts_address_at", "address", "at"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("code", String(96), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=True, index=True),
    Column("normal_side", String(6), nullable=False),
    Column("non_negative", Boolean, nullable=False),
    # Natural balance (as its owner sees it), kept with every posting.
    Column("balance_msat", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("normal_side IN ('debit', 'credit')", name="normal_side"),
    CheckConstraint("NOT non_negative OR balance_msat >= 0", name="non_negative_balance"),
)

# Entry ids are assigned by the poster under the chain-head lock: gapless, in chain order.
journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(48), nullable=False),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    Column("payload_hash", String(64), nullable=False),
    Column("memo", Text, nullable=False, server_default=""),
    Column("posted_at_us", BigInteger, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("amount_msat", BigInteger, nullable=False),
    CheckConstraint("amount_msat <> 0", name="nonzero"),
    Index("ix_journal_lines_entry_position", "entry_id", "position", unique=True),
    Index("ix_journal_lines_account_entry", "account_id", "entry_id"),
)

# One row: the tip of the hash chain. Locking it orders all postings.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_entry_id", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# Invoices the marketplace asked its node for. The node may forget them
# (autoclean); this table is the system of record. A unique payment hash and a
# unique pay_index make a second credit impossible.
invoices = Table(
    "invoices",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("label", String(96), nullable=False, unique=True),
    Column("purpose", String(16), nullable=False),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False, index=True),
    Column("amount_msat", BigInteger, nullable=False),
    Column("description", String(640), nullable=False),
    # 'creating' until the node answers; then the node's statuses.
    Column("status", String(12), nullable=False),
    Column("payment_hash", String(64), nullable=True, unique=True),
    Column("bolt11", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", BigInteger, nullable=True),  # UNIX seconds, as the node says
    Column("pay_index", BigInteger, nullable=True, unique=True),
    Column("amount_received_msat", BigInteger, nullable=True),
    Column("paid_at", BigInteger, nullable=True),
    Column("credit_entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=True),
    Column("loan_id", BigId, ForeignKey("loans.id"), nullable=True, index=True),
    # A keyed hash of the network address the request came from (none for the CLI and the demo): the
    # per-address cap on open invoices. Never the address itself, and never in an export.
    Column("address", String(64), nullable=True),
    # Who asked: 'owner' (the user's own page or API) or 'paycode' (anyone holding a loan's pay code). The two
    # have separate budgets, so strangers with a pay code cannot use up the borrower's own.
    Column("made_by", String(8), nullable=False, server_default="owner"),
    CheckConstraint("status IN ('creating', 'unpaid', 'paid', 'expired', 'failed')", name="status"),
    CheckConstraint("purpose IN ('deposit', 'repayment')", name="purpose"),
    CheckConstraint("amount_msat > 0", name="amount_positive"),
    Index("ix_invoices_status_expires", "status", "expires_at"),
    Index("ix_invoices_address_status", "address", "status"),
    Index("ix_invoices_loan_made_by", "loan_id", "made_by", "status"),
)

# Money that arrived for a person who was erased (an invoice paid after erasure, whatever stopped it): held in
# the operator's refund account, one row per payment with the invoice's details, until the operator settles it.
refund_queue = Table(
    "refund_queue",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("invoice_id", BigId, ForeignKey("invoices.id"), nullable=False),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("loan_id", BigId, nullable=True),
    Column("payment_hash", String(64), nullable=False, unique=True),
    Column("label", String(96), nullable=False),
    Column("amount_msat", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=True),
    CheckConstraint("amount_msat > 0", name="amount_positive"),
)

# Where the payment listener stands: both cursors move in the same transaction
# as the credits they cover, so a restart resumes exactly there.
listener_state = Table(
    "listener_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_pay_index", BigInteger, nullable=False),
    Column("last_updated_index", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# Withdrawals (and later loan disbursements): held first, paid second, settled
# or released by what the node says. One row per payment hash: never paid twice.
outgoing_payments = Table(
    "outgoing_payments",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False, index=True),
    Column("payment_hash", String(64), nullable=False, unique=True),
    Column("bolt11", Text, nullable=False),
    Column("amount_msat", BigInteger, nullable=False),
    Column("fee_reserve_msat", BigInteger, nullable=False),
    Column("fee_msat", BigInteger, nullable=True),
    Column("status", String(12), nullable=False),
    Column("error", Text, nullable=False, server_default=""),
    Column("payment_preimage", String(64), nullable=True),
    Column("hold_entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=True),
    Column("settle_entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("loan_id", BigId, ForeignKey("loans.id"), nullable=True, index=True),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'unknown')", name="status"),
    CheckConstraint("amount_msat > 0 AND fee_reserve_msat >= 0", name="amounts"),
    Index("ix_outgoing_payments_status", "status"),
)

# Loans. `status` is the life cycle; `delinquency` the aging state while active.
loans = Table(
    "loans",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("borrower_id", BigId, ForeignKey("users.id"), nullable=False, index=True),
    Column("amount_msat", BigInteger, nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("story", Text, nullable=False),
    Column("annual_rate_bps", Integer, nullable=False),
    Column("term_count", Integer, nullable=False),
    Column("frequency", String(8), nullable=False),
    Column("method", String(16), nullable=False),
    Column("apr_bps", Integer, nullable=False),
    Column("service_fee_bps", Integer, nullable=False),
    Column("grade", String(1), nullable=False),
    # Probability of default over the remaining term, parts per million (portfolio/pd.py), with the grade;
    # both as they were when the request was made, for the calibration table.
    Column("pd_ppm", Integer, nullable=False, server_default="0"),
    Column("origination_grade", String(1), nullable=False, server_default="C"),
    Column("origination_pd_ppm", Integer, nullable=False, server_default="0"),
    Column("status", String(12), nullable=False),
    Column("delinquency", String(12), nullable=False, server_default="current"),
    Column("funded_msat", BigInteger, nullable=False, server_default="0"),
    Column("escrow_account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("funding_deadline", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("funded_at", DateTime(timezone=True), nullable=True),
    Column("disbursed_at", DateTime(timezone=True), nullable=True),
    Column("start_date", Date, nullable=True),
    Column("defaulted_on", Date, nullable=True),
    Column("closed_on", Date, nullable=True),
    # The worst lateness seen: a loan repaid within grace counts as repaid on time.
    Column("max_days_past_due", Integer, nullable=False, server_default="0"),
    # What a prepayment does: shorten the loan or lower the installments (schedules.Prepayment).
    Column("prepayment", String(20), nullable=False, server_default="reduce_term"),
    # The effective annual rate with compounding (EU APRC), beside the actuarial APR.
    Column("aprc_bps", Integer, nullable=False, server_default="0"),
    # A funded request must be disbursed by then, or it lapses and the pledges go back.
    Column("disburse_by", DateTime(timezone=True), nullable=True),
    # The borrower's balance: principal owed and interest accrued (unpaid) up to accrued_on.
    Column("principal_outstanding_msat", BigInteger, nullable=False, server_default="0"),
    Column("interest_accrued_msat", BigInteger, nullable=False, server_default="0"),
    Column("accrued_on", Date, nullable=True),
    # The annuity installment when a prepayment lowered it (borrower's choice); NULL: the contract's.
    Column("installment_msat", BigInteger, nullable=True),
    # What the lenders have received so far (cash, principal, income before the fee), counted since
    # the notes' share weights were set: each note's part is these times its weight, rounded down.
    Column("shared_cash_msat", BigInteger, nullable=False, server_default="0"),
    Column("shared_principal_msat", BigInteger, nullable=False, server_default="0"),
    Column("shared_income_msat", BigInteger, nullable=False, server_default="0"),
    # The lenders' cash total when the escrow's remainders were paid out at the write-off: recoveries
    # after it are shared counting from here (sharing.share_out). NULL: not written off (or not yet paid).
    Column("shared_cash_base_msat", BigInteger, nullable=True),
    CheckConstraint("status IN ('funding', 'funded', 'active', 'repaid', 'expired', 'lapsed', 'written_off')",
                    name="status"),
    CheckConstraint("delinquency IN ('current', 'grace', 'late', 'defaulted')", name="delinquency"),
    CheckConstraint("amount_msat > 0 AND funded_msat >= 0 AND funded_msat <= amount_msat", name="funding"),
    Index("ix_loans_status", "status"),
)

# The market list's indexes (migration 0011): one per sort and per filter, each led by the status every
# market query fixes, and ending in the id that breaks ties (and keys the next page).
for _name, _columns in (("newest", ("id",)), ("rate", ("annual_rate_bps", "id")),
                        ("grade", ("grade", "id")),
                        ("purpose", ("purpose", "id")), ("frequency", ("frequency", "id")),
                        ("term", ("term_count", "id"))):
    Index(f"ix_loans_market_{_name}", loans.c.status, *(loans.c[c] for c in _columns))
# Soonest deadline first and ties newest first: the "time left" sort's own order, read with no sort step.
Index("ix_loans_market_deadline", loans.c.status, loans.c.funding_deadline, loans.c.id.desc())
# What the "funded" sort orders by; the query must spell it the same way for the index to serve it.
FUNDED_RATIO_SQL = "(CAST(funded_msat AS FLOAT) / CAST(amount_msat AS FLOAT))"
FUNDED_RATIO = literal_column(FUNDED_RATIO_SQL, Float)
Index("ix_loans_market_funded", loans.c.status, text(FUNDED_RATIO_SQL), loans.c.id)

# The market's version: bumped by triggers on `loans` (migration 0011) whenever a request that is or was
# taking pledges changes, so every process can tell whether its cached market list is still the list.
market_state = Table(
    "market_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

# A loan's static pay code (LNURL-pay, Lightning Address): an unguessable handle, made once, never changed.
pay_handles = Table(
    "pay_handles",
    metadata,
    Column("loan_id", BigId, ForeignKey("loans.id"), primary_key=True),
    Column("handle", String(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The BOLT12 offer the marketplace's node made for a loan (any amount, no personal data): a payment to it
# is credited to this loan by the listener, matched by the paid invoice's `local_offer_id`.
loan_offers = Table(
    "loan_offers",
    metadata,
    Column("loan_id", BigId, ForeignKey("loans.id"), primary_key=True),
    Column("offer_id", String(64), nullable=False, unique=True),
    Column("bolt12", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

notes = Table(
    "notes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("loan_id", BigId, ForeignKey("loans.id"), nullable=False, index=True),
    Column("lender_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("amount_msat", BigInteger, nullable=False),
    Column("principal_outstanding_msat", BigInteger, nullable=False),
    Column("principal_repaid_msat", BigInteger, nullable=False, server_default="0"),
    Column("income_msat", BigInteger, nullable=False, server_default="0"),  # interest + late fees, net of fee
    Column("received_msat", BigInteger, nullable=False, server_default="0"),
    Column("loss_msat", BigInteger, nullable=False, server_default="0"),
    Column("status", String(12), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The note's weight in every share-out: its principal (for loans running before the fair-share
    # rules, its principal outstanding when they came in).
    Column("share_weight_msat", BigInteger, nullable=False, server_default="0"),
    # The auto-invest order that bought it (NULL: bought by hand).
    Column("autoinvest_order_id", BigInteger, nullable=True),
    CheckConstraint("status IN ('pledged', 'released', 'active', 'repaid', 'written_off')", name="status"),
    CheckConstraint("amount_msat > 0 AND principal_outstanding_msat >= 0", name="amounts"),
    # A lender's notes newest first (the portfolio's pages) read from this index alone and stop after a
    # page; it serves every lookup by lender too.
    Index("ix_notes_lender_newest", "lender_id", "id", "status"),
)

installments = Table(
    "installments",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("loan_id", BigId, ForeignKey("loans.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("principal_msat", BigInteger, nullable=False),
    Column("interest_msat", BigInteger, nullable=False),
    Column("late_fee_msat", BigInteger, nullable=False, server_default="0"),
    Column("principal_paid_msat", BigInteger, nullable=False, server_default="0"),
    Column("interest_paid_msat", BigInteger, nullable=False, server_default="0"),
    Column("late_fee_paid_msat", BigInteger, nullable=False, server_default="0"),
    # The day it was paid in full: how late, if at all, is the borrower's record (portfolio/pd.py).
    Column("settled_on", Date, nullable=True),
    Index("ix_installments_loan_number", "loan_id", "number", unique=True),
)

# One row per paid repayment invoice (unique payment hash: credited once). Each note's share of it is
# recomputed from the lenders' cumulative totals before it (db/repayments.py: repayment_shares); NULL
# totals mark repayments credited before migration 0006, whose split lives in legacy_note_shares.
repayments = Table(
    "repayments",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("loan_id", BigId, ForeignKey("loans.id"), nullable=False, index=True),
    Column("payment_hash", String(64), nullable=False, unique=True),
    Column("received_msat", BigInteger, nullable=False),
    Column("applied_msat", BigInteger, nullable=False),
    Column("refund_msat", BigInteger, nullable=False),
    Column("service_fee_msat", BigInteger, nullable=False),
    Column("late_fee_msat", BigInteger, nullable=False),
    Column("interest_msat", BigInteger, nullable=False),
    Column("principal_msat", BigInteger, nullable=False),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("shared_cash_before_msat", BigInteger, nullable=True),
    Column("shared_principal_before_msat", BigInteger, nullable=True),
    # This repayment closed the loan: the held remainder msats went to the notes with it.
    Column("closing", Boolean, nullable=False, server_default="0"),
)

# The per-note split of repayments credited before migration 0006, kept as it was paid.
legacy_note_shares = Table(
    "legacy_note_shares",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("payment_hash", String(64), nullable=False),
    Column("note_id", BigId, ForeignKey("notes.id"), nullable=False, index=True),
    Column("cash_msat", BigInteger, nullable=False),
    Column("principal_msat", BigInteger, nullable=False),
    Column("income_msat", BigInteger, nullable=False),
    Index("ix_legacy_note_shares_payment_note", "payment_hash", "note_id", unique=True),
)

# Per-user API tokens: only the sha256 of the token is stored; the prefix lets a person tell them apart.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Every token ends (None only for tokens made before expiry existed); 'read' tokens may only read.
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("scope", String(8), nullable=False, server_default="full"),
)

# Notices to people (reminders, lender alerts): written once (dedupe_key), sent by the scheduler.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("dedupe_key", String(160), nullable=False, unique=True),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(12), nullable=False, server_default="pending"),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("read_at", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=False, server_default=""),
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    Index("ix_outbox_status", "status"),
)

# When each scheduled job last ran, and for which day: the aging job refuses to run for a day
# in the future or before its last run.
job_runs = Table(
    "job_runs",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_as_of", Date, nullable=False),
    Column("ran_at", DateTime(timezone=True), nullable=False),
)

# What the book has taught each grade, refreshed by the daily job: its realised record (months of
# exposure repaid, misses) and the calibration factor (posterior / prior miss rate) new grades use.
grade_calibration = Table(
    "grade_calibration",
    metadata,
    Column("grade", String(1), primary_key=True),
    Column("successes_months_milli", BigInteger, nullable=False),
    Column("failures_milli", BigInteger, nullable=False),
    Column("factor_ppm", BigInteger, nullable=False),
    Column("loans", Integer, nullable=False),
    Column("defaulted", Integer, nullable=False),
    Column("updated_on", Date, nullable=False),
)

# A lender's auto-invest rules (domain/autoinvest.py), one row per lender.
autoinvest_rules = Table(
    "autoinvest_rules",
    metadata,
    Column("lender_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("budget_msat", BigInteger, nullable=False),
    Column("note_msat", BigInteger, nullable=False),
    Column("max_per_loan_msat", BigInteger, nullable=False),
    Column("max_per_loan_bps", Integer, nullable=False),
    Column("max_per_borrower_msat", BigInteger, nullable=False),
    Column("grades", String(16), nullable=False),
    Column("frequencies", String(40), nullable=False),
    Column("purposes", String(200), nullable=False),
    Column("max_term_days", Integer, nullable=False),
    Column("min_rate_bps", Integer, nullable=False),
    Column("max_expected_loss_bps", Integer, nullable=False),
    Column("reinvest", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Why the engine should run again: a request listed, rules changed, a deposit or repayments arrived.
# Persisted, so a trigger survives a restart; the engine takes every pending one in one run.
autoinvest_queue = Table(
    "autoinvest_queue",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("lender_id", BigId, nullable=True),
    Column("loan_id", BigId, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("run_id", BigInteger, nullable=True),
    Index("ix_autoinvest_queue_run_id", "run_id"),
)

# When a lender saved auto-invest rules (the last window's only): the limit on rule changes.
autoinvest_rule_changes = Table(
    "autoinvest_rule_changes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("lender_id", BigId, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_autoinvest_rule_changes_lender_at", "lender_id", "at"),
)

# One engine run: planned in one transaction (its orders), then bought order by order.
autoinvest_runs = Table(
    "autoinvest_runs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("status", String(12), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("lenders", Integer, nullable=False),
    Column("loans", Integer, nullable=False),
    Column("planned_msat", BigInteger, nullable=False),
    Column("bought_msat", BigInteger, nullable=False, server_default="0"),
    Column("note", Text, nullable=False, server_default=""),
    CheckConstraint("status IN ('buying', 'done')", name="status"),
)

# Each note a run decided to buy. Its id is the pledge's idempotency key, so a run resumed after a
# crash buys nothing twice.
autoinvest_orders = Table(
    "autoinvest_orders",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("run_id", BigInteger, ForeignKey("autoinvest_runs.id"), nullable=False, index=True),
    Column("lender_id", BigId, ForeignKey("users.id"), nullable=False, index=True),
    Column("loan_id", BigId, ForeignKey("loans.id"), nullable=False),
    Column("amount_msat", BigInteger, nullable=False),
    Column("status", String(12), nullable=False),
    Column("note_id", BigInteger, nullable=True),
    Column("error", Text, nullable=False, server_default=""),
    CheckConstraint("status IN ('planned', 'bought', 'refused')", name="status"),
)
