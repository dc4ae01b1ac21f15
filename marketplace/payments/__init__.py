"""Building blocks of outgoing payments that services and workers both stand on.

Below the services, above the database: the per-payment locks, one attempt at
paying an invoice, reconciling payments whose outcome is unknown, and the crash
tests' named fault points. The withdrawal and disbursement services use them
directly; the background workers (marketplace/workers/) run the reconciler on
a timer. Nothing here imports services or workers.
"""
