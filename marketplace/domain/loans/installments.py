"""One installment as it stands: shared by the allocation and the delinquency rules."""
from __future__ import annotations

from datetime import date
from typing import NamedTuple


class InstallmentState(NamedTuple):
    """One installment as it stands: what it is made of, what was paid of it. (A tuple: the settlement
    path makes one per open installment per repayment.)"""

    number: int
    due_date: date
    principal_msat: int
    interest_msat: int
    late_fee_msat: int
    principal_paid_msat: int
    interest_paid_msat: int
    late_fee_paid_msat: int
    # The day the last msat of it was paid (None while it is open, or from before this was kept).
    settled_on: date | None = None

    @property
    def principal_unpaid_msat(self) -> int:
        return self.principal_msat - self.principal_paid_msat

    @property
    def interest_unpaid_msat(self) -> int:
        return self.interest_msat - self.interest_paid_msat

    @property
    def late_fee_unpaid_msat(self) -> int:
        return self.late_fee_msat - self.late_fee_paid_msat

    @property
    def due_msat(self) -> int:
        """The installment itself: principal and interest (late fee apart)."""
        return self.principal_msat + self.interest_msat

    @property
    def paid_msat(self) -> int:
        return self.principal_paid_msat + self.interest_paid_msat + self.late_fee_paid_msat

    @property
    def unpaid_msat(self) -> int:
        return self.principal_unpaid_msat + self.interest_unpaid_msat + self.late_fee_unpaid_msat

    @property
    def is_paid(self) -> bool:
        return self.unpaid_msat == 0
