"""Stopping, removing, restarting, renaming and copying (guide: 停止与删除容器 注意事项,
docker rename操作restarting状态的容器可能会失败, docker cp, 并发性能)."""
from __future__ import annotations

from . import rule

ROOT_USERS = frozenset({"", "root", "0"})


@rule("force-remove", actions=("container.delete",),
      reason="docker rm -f ignores errors on the way and can leave container metadata behind",
      hint="docker stop NAME, then docker rm NAME (a failed removal then fails cleanly)")
def force_remove(spec, facts):
    if facts.request.q_bool("force"):
        return [f"docker rm -f {facts.request.name}"]


@rule("kill", actions=("container.kill",),
      reason="docker kill sends a signal the container's process may not handle as intended",
      hint="docker stop NAME, which asks the process to exit and only then kills it")
def kill(spec, facts):
    agent = facts.request.header("user-agent")
    if isinstance(agent, str) and (agent == HEALTHD_AGENT or agent.startswith(HEALTHD_AGENT + "/")):
        # healthd's exit-on-unhealthy kill is the guide's own remedy: recorded (the audit line's
        # client), not advised against. A User-Agent is what the client says; this rule only
        # ever advises, so a claimed one hides no refusal.
        return None
    sig = facts.request.q("signal") or "KILL"
    return [f"docker kill --signal {sig} {facts.request.name}"]


HEALTHD_AGENT = "dockguard-healthd"  # healthd/service.py sends dockguard-healthd/VERSION


@rule("stop-negative-timeout", actions=("container.stop", "container.restart"),
      reason="with t<0 docker waits for ever; a process that ignores SIGTERM hangs docker stop",
      hint="give a non-negative -t, or be sure the process handles SIGTERM")
def stop_negative_timeout(spec, facts):
    t = facts.request.q("t").strip()
    try:
        if t and int(t) < 0:
            return [f"-t {t}"]
    except ValueError:
        return None  # dockerd refuses it itself


@rule("restart-autoremove", actions=("container.restart",),
      reason="restarting a container created with --rm can hang (it removes itself on exit)",
      hint="docker run the container again instead of restarting it, or create it without --rm")
def restart_autoremove(spec, facts):
    info = facts.container(facts.request.name)
    if info is not None and (info.get("HostConfig") or {}).get("AutoRemove"):
        return [f"docker restart {facts.request.name} (created with --rm)"]


@rule("rename-restarting", actions=("container.rename",),
      reason="renaming a restarting container fails on its half-built network sandbox",
      hint="wait until the container is running or stopped, then rename it")
def rename_restarting(spec, facts):
    info = facts.container(facts.request.name)
    if info is not None and (info.get("State") or {}).get("Restarting"):
        return [f"docker rename {facts.request.name} while it is restarting"]


@rule("cp-nonroot", actions=("container.archive_put",),
      reason="docker cp into a container that runs as a non-root user makes the copied files "
             "root's, which the user then cannot change",
      hint="docker cp -a (keep uid/gid), or chown inside the container afterwards")
def cp_nonroot(spec, facts):
    if facts.request.q_bool("copyUIDGID"):
        return None
    info = facts.container(facts.request.name)
    user = ((info or {}).get("Config") or {}).get("User") or ""
    name = user.split(":", 1)[0]
    if name not in ROOT_USERS:
        return [f"docker cp into {facts.request.name} (runs as {user!r}) without -a"]
