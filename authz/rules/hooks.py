"""The container's hook-spec, validated with hookbin's own code at `docker create` (guide:
创建容器使用hook-spec 注意事项), so a bad spec never reaches the runtime.

Hooks run as root on the host, so this is also where a hook-spec is judged as the privilege
it is (issue 7): the spec must lie where the host grants specs (policy [hookspec]), be
root's alone from / down, its hooks' env come from an allow-list and the arguments of
dockguard's own hook programs stay within the policy. The label is judged on the labels the
container will really have: dockerd merges the image's labels (Dockerfile LABEL,
`docker import -c 'LABEL ...'`) under the request's.
"""
from __future__ import annotations

from dockguard.util import HOOK_SPEC_LABEL as LABEL

from . import rule

ACTIONS = ("container.create", "service.create", "service.update")


def merged_labels(spec, ctx) -> dict:
    """The labels dockerd will give the container: the image's, overridden by the request's.

    The image is looked up (memoised per request); a failed lookup raises and the engine
    denies. An image the daemon does not have yet contributes nothing: dockerd refuses the
    create (the CLI pulls, then creates again, judged again), and a service's task is judged
    by dockguard-runtime when it starts.
    """
    image_labels = {}
    if spec.image:
        image_labels = (ctx.image_config(spec.image) or {}).get("Labels") or {}
        if not isinstance(image_labels, dict):
            image_labels = {}
    return {**image_labels, **spec.labels}


@rule("hook-spec", actions=ACTIONS,
      reason="hooks run as root on the host: a hook-spec is a privilege the host grants, and an "
             "invalid one makes the container fail at start",
      hint="use a spec the host provides in a spec directory of the policy (root-owned, "
           "[hookspec] spec_dirs), with env from the allow-list and hook arguments the policy "
           "allows; check it with `dockguard hookspec validate FILE`")
def hook_spec(spec, facts):
    value = merged_labels(spec, facts).get(LABEL)
    if value is None:
        return None
    where = "" if LABEL in spec.labels else "image label: "
    return [where + p for p in check_hook_spec(value, facts)]


def check_hook_spec(value: str, ctx) -> list[str]:
    """Problems with a `dockguard.hook-spec` value, wherever it is given (label or
    annotation: authz/rules/annotation.py calls this too). Reading the spec files is the
    context's (a fact it provides), not the rule's."""
    return ctx.hook_spec_problems(value)
