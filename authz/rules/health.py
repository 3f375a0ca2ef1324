"""Health options (guide: 不允许在启动时同时配置健康检查相关选项与--no-healthcheck选项), and the
health sidecar's labels, validated with healthd's own code so a bad label fails at create
(on the merged labels: an image's `dockguard.health.*` labels reach the container too)."""
from __future__ import annotations

from . import rule
from .hooks import merged_labels

ACTIONS = ("container.create", "service.create", "service.update")
# spec.HEALTH_OPTIONS -> the CLI flag that sets it
HEALTH_FLAGS = {"interval": "--health-interval", "timeout": "--health-timeout",
                "startperiod": "--health-start-period", "startinterval": "--health-start-interval",
                "retries": "--health-retries"}


@rule("health-with-no-healthcheck", actions=ACTIONS,
      reason="health options together with --no-healthcheck contradict each other",
      hint="either drop --no-healthcheck or drop the --health-* options")
def health_with_no_healthcheck(spec, facts):
    if spec.health_test and spec.health_test[0].upper() == "NONE" and spec.health_options:
        opts = ", ".join(HEALTH_FLAGS.get(k, k) for k in spec.health_options)
        return [f"--no-healthcheck with {opts}"]


@rule("health-labels", actions=ACTIONS,
      reason="a malformed dockguard.health.* label would leave the container unwatched",
      hint="fix the label: durations like 30s or 1m30s, retries a positive integer, "
           "tcp=PORT, http=PORT/path")
def health_labels(spec, facts):
    # The container's labels as dockerd merges them: the image's under the request's.
    labels = merged_labels(spec, facts)
    if not any(k.startswith("dockguard.health.") for k in labels):
        return None
    try:
        from healthd.config import check_labels
    except ImportError:
        return ["health labels given but the health sidecar's validation is not installed"]
    return list(check_labels(labels))
