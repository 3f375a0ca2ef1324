"""`dockguard sandbox up --profile cis`: the sandbox's policy selects the cis profile
(docs/cis.md), and the walkthrough shows what it adds to the guide's rules."""
from __future__ import annotations

from pathlib import Path

# What a container needs to run under the cis profile (and docker-bench's section 5 to pass).
GOOD = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "64", "--read-only",
        "--security-opt", "no-new-privileges", "--health-cmd", "true", "--health-interval", "5s"]


def select(policy: Path) -> None:
    """Make the sandbox's policy file (written by the hook sandbox, or new) select the profile."""
    text = policy.read_text() if policy.exists() else ""
    policy.write_text('profile = "cis"\n' + text)


def walkthrough(step) -> None:
    step("a plain container is refused: no limits, writable root, no health check",
         ["run", "--rm", "busybox", "true"], False)
    step("a container within the profile runs", ["run", "--rm", *GOOD, "busybox", "echo", "hello, CIS"], True)
    step("a capability beyond Docker's default set is refused (5.4)",
         ["run", "--rm", *GOOD, "--cap-add", "IPC_OWNER", "busybox", "true"], False)
    step("a host device is refused unless the policy lists it (5.18)",
         ["run", "--rm", *GOOD, "--device", "/dev/fuse", "busybox", "true"], False)
    step("shared bind propagation is refused (5.20)",
         ["run", "--rm", *GOOD, "-v", "/srv:/srv:rshared", "busybox", "true"], False)
    step("on-failure restarts above 5 are refused (5.15)",
         ["create", "--name", "cis-restart", *GOOD, "--restart", "on-failure:10", "busybox", "true"], False)
    step("a long-running container within the profile", ["run", "-d", "--name", "cis-demo",
                                                          "--restart", "on-failure:5", *GOOD,
                                                          "busybox", "sleep", "3600"], True)
    step("docker exec -u root is allowed and audited (5.24)", ["exec", "-u", "root", "cis-demo", "true"], True)
    step("lifting its pids limit is refused (5.29)", ["update", "--pids-limit", "-1", "cis-demo"], False)
