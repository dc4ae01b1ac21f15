"""Pure lending rules: schedules, APR, repayment allocation, delinquency, limits.

No web, database or Lightning imports; money in integer msat.
"""
