"""Fault points armed by name or through a file (the crash trials arm one point after another in a running app)."""
from __future__ import annotations

from pathlib import Path

from marketplace.payments.faults import armed_point


def test_a_point_named_directly_is_armed_as_is() -> None:
    assert armed_point("withdrawal:after-hold") == "withdrawal:after-hold"
    assert armed_point("") == ""


def test_a_file_arms_whatever_it_names_at_each_check(tmp_path: Path) -> None:
    path = tmp_path / "point"
    configured = f"file:{path}"
    assert armed_point(configured) == ""  # no file yet: nothing armed
    path.write_text("repayment:mid-credit\n")
    assert armed_point(configured) == "repayment:mid-credit"
    path.write_text("")
    assert armed_point(configured) == ""
