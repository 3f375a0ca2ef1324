"""Hypothesis settings for the fuzz tests: bounded and derandomized in CI, longer on demand.

    pytest tests/fuzz                                   # CI: fixed examples, same every run
    DOCKGUARD_FUZZ_EXAMPLES=20000 pytest tests/fuzz     # longer run, fresh random examples

A failing example is printed with a blob to replay it (@reproduce_failure). No example
database is written.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("DOCKGUARD_FUZZ_EXAMPLES", "0") or 0)

settings.register_profile(
    "dockguard-fuzz",
    max_examples=EXAMPLES or 150,
    derandomize=not EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.load_profile("dockguard-fuzz")


def examples(ci: int) -> int:
    """This test's example count: `ci` in CI, DOCKGUARD_FUZZ_EXAMPLES when set."""
    return EXAMPLES or ci
