"""The import rules of docs/architecture.md, checked: the core never imports an edge, the
product never imports the harness, and the runtime path stays on the stdlib."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Edges: I/O and frameworks. The core reaches them only through what the edge hands it.
EDGES = ("authz.context", "authz.daemondirs", "authz.app", "authz.serve", "authz.worker",
         "authz.audit", "healthd.service", "healthd.events", "healthd.execapi", "docker",
         "flask", "gunicorn", "gevent", "psutil", "requests", "dockguard.harness")

CORE = {
    # the plugin's decision, with every rule module registered (policy.load imports them all)
    "authz.engine": "from authz import policy; policy.load()",
    "authz.existing": "",
    "authz.spec": "",
    "healthd.machine": "",
    "healthd.scheduler": "",
    "healthd.config": "",
    "hookbin.spec": "",
}


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", sorted(CORE))
def test_core_imports_no_edge(module):
    loaded = loaded_after(f"import {module}\n{CORE[module]}")
    assert not {m for m in loaded if m in EDGES or m.split(".")[0] in EDGES}, module


@pytest.mark.parametrize("module", ["authz.cli", "hookbin.runtime", "healthd.cli", "dockguard.cli",
                                    "dockguard.install", "dockguard.doctor", "dockguard.preflight"])
def test_product_never_imports_the_harness(module):
    assert not any(m.startswith("dockguard.harness") for m in loaded_after(f"import {module}"))


def test_runtime_path_is_stdlib_and_small():
    """dockguard-runtime's create path under -I -S: dockguard.util is its one shared helper
    module, and it pulls in no subprocess, socket, http or ctypes at import time."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import hookbin.runtime, hookbin.judge; "
            "print(' '.join(sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(ROOT)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert "dockguard.util" in out
    assert not {"subprocess", "socket", "http.client", "ctypes", "json", "re"} & set(out)
