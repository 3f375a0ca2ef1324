"""Moved to dockguard/harness/daemon.py (test and sandbox harness out of the product packages, issue 11).
This alias keeps the old import path working for work in progress; new code imports dockguard.harness.daemon."""
import sys

import dockguard.harness.daemon as _moved

sys.modules[__name__] = _moved
