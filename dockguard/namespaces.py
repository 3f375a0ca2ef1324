"""Moved to dockguard/harness/namespaces.py (test and sandbox harness out of the product packages, issue 11).
This alias keeps the old import path working for work in progress; new code imports dockguard.harness.namespaces."""
import sys

import dockguard.harness.namespaces as _moved

sys.modules[__name__] = _moved
