"""The container's hook-spec label, validated with hookbin's own code at `docker create`
(guide: 创建容器使用hook-spec 注意事项), so a bad spec never reaches the runtime."""
from __future__ import annotations

from . import rule

LABEL = "dockguard.hook-spec"


@rule("hook-spec", actions=("container.create",),
      reason="an invalid hook-spec makes the container fail at start, or runs a hook from "
             "outside Docker's hooks directory",
      hint="fix the spec (`dockguard hookspec validate FILE`): absolute paths under "
           "<Docker Root>/hooks, path/args/env present, timeout an integer in [1, 120]")
def hook_spec(req, spec, ctx):
    value = spec.labels.get(LABEL)
    if value is None:
        return None
    return check_hook_spec(value, ctx)


def check_hook_spec(value: str, ctx) -> list[str]:
    """Problems with a `dockguard.hook-spec` value, wherever it is given (label or
    annotation: authz/rules/annotations.py calls this too)."""
    try:
        from hookbin.spec import check_label
    except ImportError:
        return ["hook-spec given but hookbin's validation is not installed"]
    return list(check_label(value, ctx.docker_root()))
