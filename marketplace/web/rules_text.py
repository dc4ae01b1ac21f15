"""The loan rules the pages show, marked for translation.

The English is the numbered list in the docstrings of marketplace/domain/loans/allocation.py
and sharing.py (the code's own statement of its rules); tests/unit/test_translation_catalog.py
checks that these messages say exactly the same, so a change to a rule there fails until it is
made here (and translated) too.
"""
from __future__ import annotations

from marketplace.domain.messages import N_

ALLOCATION_STEPS = (
    N_("Interest is simple interest on the principal still owed, for the time it is owed, at the loan's "
       "rate: each day costs its share of the period it falls in, so a whole period costs exactly the "
       "periodic rate, and unpaid interest never bears interest itself. How often the borrower pays does not "
       "change what the loan costs. Paid on the due dates, the loan costs exactly its schedule."),
    N_("Overdue installments first (due on or before the day of the payment), oldest first: in each, the "
       "late fee, then the interest, then the principal."),
    N_("Then the next installments, in order: each takes the interest accrued up to today, then principal. "
       "Paying exactly what is shown as next due settles that installment (early pays it less interest) and "
       "the following one becomes the next; more settles the ones after it the same way, so the day's "
       "payments count by their total, however they are split. Paid ahead, nothing more is due until the "
       "first installment not settled."),
    N_("An installment paid ahead costs only the interest accrued to the day it is paid, so more of it "
       "repays principal, and the installments still to come are recomputed from what is left: they keep "
       "their amount and the loan ends sooner (or, if the borrower chose so, every later installment gets "
       "smaller). Interest on the repaid principal stops the same day."),
    N_("A borrower who owes no more principal than the schedule leaves after the installments already due is "
       "never late and pays no late fee, even with something left unpaid. Late fees, like interest, are "
       "rounded down."),
    N_("From the day a loan is written off it bears no more interest; what was owed then stays owed."),
    N_("Paying the whole loan off costs what is overdue, the late fees, the interest accrued to today and "
       "the principal still owed — never more than what paying on the due dates would cost. Anything beyond "
       "that is returned to the borrower's balance; no msat is ever lost."),
)

SHARING_STEPS = (
    N_("The platform's service fee is a share of the lenders' income only (the interest and late fees the "
       "borrower pays), never of principal: a lender whose loan is repaid in full gets back at least every "
       "msat lent. The fee is counted on the loan's cumulative income and rounded down, so its roundings "
       "never add up against the lenders."),
    N_("Each note is entitled to its pro-rata part — by the principal it lent — of everything the lenders "
       "have received from the loan so far. After every repayment each note holds exactly that entitlement "
       "rounded down to the msat: never more, less by under 1 msat, never a negative share, and the same for "
       "every note whatever its position."),
    N_("The under-1-msat remainders (fewer msats than there are notes) wait in the loan's escrow account and "
       "are paid out when the loan is repaid or written off: by largest remainder, ties going round the "
       "notes in turn from loan to loan. After a write-off, recoveries are shared the same way counting from "
       "the write-off, so nothing waits for a recovery that may never come."),
    N_("Principal repaid is attributed the same way (each note's repaid principal is its entitlement rounded "
       "down), so every note's principal is exactly repaid when the loan is. A note's income is its cash "
       "less its principal."),
)
