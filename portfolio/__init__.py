"""The portfolio engine: plain functions on numpy arrays (no web, database or Lightning imports).

Shapes: n loans, m lenders, P eligible (lender, loan) pairs, K quadrature nodes.
Money in msat as float64 for risk figures (round once where shown); notes as int64.
Bad input raises ``portfolio.errors.PortfolioInputError`` (a ValueError with ``.message``).

portfolio.pd -- probability of default (sources and assumptions in its docstring)
    grade_priors() -> (alpha (5,), beta (5,))            Lending Club 2016Q1 rates by grade A..E
    prior_for_rate(bad_rate) -> (alpha, beta)            Beta prior reproducing a 12-month rate
    period_months(frequency) -> months per installment   daily / weekly / monthly
    evidence(on_time, late, missed, months_per_installment) -> (successes, failures)  elementwise
    posterior(alpha, beta, successes, failures) -> (alpha', beta')                    broadcast
    grade_posterior(grade_index (N,), successes (N,), failures (N,), age_days=None,
                    half_life_days=None) -> (alpha (5,), beta (5,))   the book's own outcomes
    calibration_factor(alpha_post, beta_post) -> (5,)    realised / prior miss rate per grade
    remaining_pd(alpha, beta, months) -> PD               1 - B(a, b + m) / B(a, b)
    grade_of_pd(pd) -> letters                           bands GRADE_PD_EDGES
    first_request_pd(amount_msat, count, frequency) / first_request_grade(...)  first requests
    expected_loss(pd, exposure_msat, lgd=LGD_DEFAULT (0.9)) -> msat
portfolio.risk -- one-factor Gaussian copula, Basel retail correlation by default
    quadrature_risk(holdings (m, n) sparse msat, pd (n,), lgd=0.9, rho=None) -> RiskFigures
        (exposure, expected_loss, var95, es95, var99, es99, prob_any_loss), each (m,)
    monte_carlo_losses(holdings, pd, lgd, rho, scenarios) -> (scenarios, m); empirical_risk(losses, level)
    exact_loss_pmf(loss_units (n,), pd (n,)) -> pmf       small holdings, exact lattice
    book_loss_distribution(exposure (n,), pd (n,)) -> (edges (bins+1,), probabilities (bins,))
    concentration(holdings) -> (hhi (m,), effective_n (m,), largest_share (m,))
    exposure_by_group(holdings, group_of_loan (n,)) -> (labels (G,), exposure (m, G))
    spread_curve(note_counts, pd, lgd, return_if_repaid, rho) -> P(losing money) per count
    basel_retail_correlation(pd) -> rho
portfolio.allocation -- auto-invest as a min-cost flow (pylmcf; OR-Tools in the tests)
    eligible_pairs(loan attributes (n,), lender rule masks (m,)) -> (pair_lender (P,), pair_loan (P,))
    Allocator(pair_lender, pair_loan, budget_notes (m,), remaining_notes (n,), per_loan_cap=1,
              idle_share=None (m,), el_rate=None (n,), el_ceiling=None (m,, NaN = none),
              loan_bucket=None (n,), bucket_cap=None (m, B; -1 = none), loan_priority=None (n,))
        .solve() -> Allocation(notes (P,), placed_by_lender (m,), placed_by_loan (n,), reason)
        .update(budget_notes=, remaining_notes=, per_loan_cap=, idle_share=) then .solve() (warm)
    allocate(...) -> Allocation                          one shot
    AllocationError                                      bad limits, with a sentence
portfolio.returns
    xirr(dates (T,), amounts (T,)) -> float | None       pyxirr
    xirr_batch(days (m, T), amounts (m, T)) -> (m,)      vectorised Newton, NaN where undefined
    expected_annual_return(outstanding, annual_rate, remaining_years, pd, lgd) -> float

Charts for these live in marketplace/web/charts.py (SVG strings).
"""
