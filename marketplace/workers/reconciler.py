"""Moved to marketplace/payments/reconciler.py (issue 21: services stand on it, so it lives below them).

This name is kept, as the very same module, for code written before the move; import the new one.
"""
import sys

from marketplace.payments import reconciler as _moved

sys.modules[__name__] = _moved
