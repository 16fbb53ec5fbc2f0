"""Shared test settings.

Tests that need what only this workplace's ``../shared`` provides (a real kube-apiserver, the
ECVL/EDDL build) carry a marker, ``envtest`` or ``ecvl``, and skip with a reason on a clone
elsewhere. Under ``CI=true`` such a skip is a failure: CI has ``../shared`` beside the clone, so a
skip there means the set-up broke, not that the dependency is absent.
"""

from __future__ import annotations

import os

import pytest

SHARED_MARKERS = ("envtest", "ecvl")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    needs_shared = [m for m in SHARED_MARKERS if item.get_closest_marker(m)]
    if report.skipped and needs_shared and os.environ.get("CI") == "true":
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"CI=true: a test marked {needs_shared[0]!r} may not skip ({reason})"
