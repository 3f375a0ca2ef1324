"""Moved to dockguard/harness/plugin.py (test and sandbox harness out of the product packages, issue 11).
This alias keeps the old import path working for work in progress; new code imports dockguard.harness.plugin."""
import sys

import dockguard.harness.plugin as _moved

sys.modules[__name__] = _moved
