"""Grades that do not jump: credibility for the book's evidence, one default one event, PD monotone in the term."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.services.grading import Record, _grade, calibration
from portfolio import pd as pd_model

GRADES = pd_model.GRADES
records = st.builds(Record, st.floats(0.0, 200.0), st.floats(0.0, 5.0))
books = st.dictionaries(st.sampled_from(GRADES), records, max_size=5)


def mean_rates(book: dict[str, Record]) -> np.ndarray:
    a0, b0 = pd_model.grade_priors(pd_model.GRADE_PRIOR_STRENGTH_MONTHS)
    return np.asarray(calibration(book) * a0 / (a0 + b0))


@settings(max_examples=200, deadline=None)
@given(books, st.sampled_from(GRADES), st.floats(0.0, pd_model.MAX_LOAN_MONTHS), st.booleans())
def test_no_single_loan_moves_a_grades_rate_more_than_the_bound(book: dict[str, Record], grade: str, months: float,
                                                                defaulted: bool) -> None:
    before = mean_rates(book)
    old = book.get(grade, Record())
    after = mean_rates({**book, grade: Record(old.successes_months + months, old.failures + float(defaulted))})
    i = GRADES.index(grade)
    assert abs(after[i] - before[i]) <= float(pd_model.grade_rate_bound(before[i])) * (1 + 1e-9)
    assert np.array_equal(np.delete(after, i), np.delete(before, i))  # other grades untouched


def test_two_written_off_b_loans_no_longer_make_b_ninety_times_riskier() -> None:
    # Issue 19: two B loans written off with 8 missed installments each gave B a factor of 98.4.
    two_defaults = calibration({"B": Record(0.0, 2.0)})
    assert 1.0 < two_defaults[1] < 1.3  # B's prior: 7.6 defaults in 3,600 months; two more make 9.6
    a0, b0 = pd_model.grade_priors(pd_model.GRADE_PRIOR_STRENGTH_MONTHS)
    assert two_defaults[1] == pytest.approx((a0[1] + 2) / (a0[1] + b0[1] + 2) * (a0[1] + b0[1]) / a0[1], rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(1_000_000, 10_000_000_000), records,
       st.lists(st.floats(0.05, 50.0), min_size=5, max_size=5), st.lists(st.floats(0.2, 5.0), min_size=5, max_size=5))
def test_pd_never_falls_as_the_term_grows(amount: int, record: Record, months: list[float], factors: list[float]
                                          ) -> None:
    pds = [_grade(amount, m, record, np.array(factors)).pd_ppm for m in sorted(months)]
    assert pds == sorted(pds)


def test_a_50000_sat_request_is_not_a_over_3_months_e_over_4_and_c_over_9() -> None:
    # Issue 19's case, with the demo's factors then (B 98.4x, E 11x): grades now follow the term monotonically.
    factors = np.array([1.0, 98.4, 1.0, 1.0, 11.0])
    grades = [_grade(50_000_000, m, Record(), factors) for m in (3.0, 4.0, 9.0)]
    assert [g.pd_ppm for g in grades] == sorted(g.pd_ppm for g in grades)
    assert [g.grade for g in grades] == sorted(g.grade for g in grades)
