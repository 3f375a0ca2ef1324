"""Rules `annotations` and `runtime` (issue 7, holes 2 and 7), and every health option (hole 9)."""
from __future__ import annotations

import dataclasses

import pytest

from authz import policy as policies

from .helpers import FakeContext, allowed, decide, default_policy, denied_by, hc


def lists(**kw):
    return dataclasses.replace(default_policy().lists, **{k: frozenset(v) for k, v in kw.items()})


class Ctx(FakeContext):
    """FakeContext that also knows the daemon's default runtime."""

    def __init__(self, default_runtime="runc", **kw):
        super().__init__(**kw)
        self.default = default_runtime

    def default_runtime(self):
        self._lookup("default_runtime")
        return self.default


def create(body, uri="/v1.45/containers/create", **ctx_kw):
    return decide("POST", uri, body, ctx=Ctx(**ctx_kw))


# ---- annotations ----

@pytest.mark.parametrize("key", ["org.systemd.property.DeviceAllow", "org.systemd.property.x",
                                 "ORG.SYSTEMD.PROPERTY.CPUQuota"])
def test_systemd_properties_are_refused_even_when_listed(key):
    msg = denied_by(create(hc(Annotations={key: "/dev/sda rwm"}),
                           lists=lists(annotations=["org.systemd.*", key])), "annotations")
    assert "systemd unit property" in msg


@pytest.mark.parametrize("key", ["com.example.team", "run.oci.keep_original_groups", "", "org.criu.config",
                                 "dockguard.other"])
def test_unlisted_annotation_is_refused_by_default(key):
    msg = denied_by(create(hc(Annotations={key: "1"})), "annotations")
    assert repr(key) in msg


def test_top_level_annotations_without_host_config_are_judged():
    denied_by(create({"Image": "busybox", "Cmd": ["true"], "Annotations": {"x": "1"}}), "annotations")


@pytest.mark.parametrize("allow,key,ok", [
    (["com.example.team"], "com.example.team", True),
    (["com.example.team"], "com.example.teams", False),
    (["com.example.*"], "com.example.team", True),
    (["com.example.*"], "com.example", False),
    (["com.example.*"], "com.exampleX.team", False),
    (["com.example.team"], "Com.example.team", False),  # keys are exact, as in the OCI config
])
def test_allow_list_exact_keys_and_prefixes(allow, key, ok):
    out = create(hc(Annotations={key: "v"}), lists=lists(annotations=allow))
    if ok:
        allowed(out)
    else:
        denied_by(out, "annotations")


def test_hook_spec_annotation_is_validated_like_the_label(tmp_path):
    bad = str(tmp_path / "missing.json")
    label = decide("POST", "/v1.45/containers/create",
                   {"Image": "busybox", "Cmd": ["true"], "Labels": {"dockguard.hook-spec": bad}}, ctx=Ctx())
    annot = create(hc(Annotations={"dockguard.hook-spec": bad}))
    label_msg = denied_by(label, "hook-spec")
    annot_msg = denied_by(annot, "annotations")
    assert "annotation dockguard.hook-spec" in annot_msg
    # the same finding, from the same check
    finding = label_msg.split("[hook-spec] ", 1)[1].split(": hooks run", 1)[0].split(": an invalid", 1)[0]
    assert finding.replace("image label: ", "") in annot_msg


def test_annotations_ignored_below_api_1_43_are_not_judged():
    # dockerd 26 drops them below 1.43 (checked); 20.10 has no such field at all
    for v in ("v1.41", "v1.42", "v01.42", "v1.42.9"):
        allowed(create(hc(Annotations={"org.systemd.property.DeviceAllow": "x"}), uri=f"/{v}/containers/create"))
    for v in ("v1.43", "v1.45", "v1.43.0"):
        denied_by(create(hc(Annotations={"x": "1"}), uri=f"/{v}/containers/create"), "annotations")
    denied_by(create(hc(Annotations={"x": "1"}), uri="/containers/create"), "annotations")  # daemon's own


def test_no_annotations_no_lookup():
    out = create(hc(Annotations={}))
    allowed(out)
    assert out.ctx.calls == [] or all(c[0] != "docker_root" for c in out.ctx.calls)


# ---- runtime ----

def test_runtime_list_empty_means_no_restriction():
    out = create(hc(Runtime="runc"))
    allowed(out)
    assert ("default_runtime",) not in out.ctx.calls


@pytest.mark.parametrize("runtime", ["runc", "io.containerd.runc.v2", "Dockguard", "dockguard "])
def test_other_runtimes_are_refused(runtime):
    msg = denied_by(create(hc(Runtime=runtime), lists=lists(runtimes=["dockguard"])), "runtime")
    assert f"--runtime {runtime}" in msg


def test_allowed_runtime_and_default():
    allowed(create(hc(Runtime="dockguard"), lists=lists(runtimes=["dockguard"])))
    out = create(hc(), lists=lists(runtimes=["dockguard"]), default_runtime="dockguard")
    allowed(out)
    assert ("default_runtime",) in out.ctx.calls
    msg = denied_by(create(hc(), lists=lists(runtimes=["dockguard"]), default_runtime="runc"), "runtime")
    assert "default runtime 'runc'" in msg


def test_runtime_lookup_failure_denies():
    out = create(hc(), lists=lists(runtimes=["dockguard"]), fail={"default_runtime"})
    assert "could not look up default_runtime" in denied_by(out, "runtime")


def test_old_api_start_body_replaces_the_runtime():
    pol = lists(runtimes=["dockguard"])
    denied_by(decide("POST", "/v1.22/containers/x/start", {"HostConfig": {"Runtime": "runc"}},
                     ctx=Ctx(lists=pol)), "runtime")
    allowed(decide("POST", "/v1.22/containers/x/start", {"HostConfig": {"Runtime": "dockguard"}},
                   ctx=Ctx(lists=pol)))


def test_policy_lists(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[lists]\nruntimes = ["dockguard"]\nannotations = ["com.example.*", "x"]\n')
    pol = policies.load(p)
    assert pol.lists.runtimes == {"dockguard"} and pol.lists.annotations == {"com.example.*", "x"}
    for bad in ('runtimes = [""]', 'annotations = [" x"]', 'annotations = ["*"]'):
        p.write_text(f"[lists]\n{bad}\n")
        with pytest.raises(policies.PolicyError, match="non-empty name"):
            policies.load(p)


# ---- hole 9: every health option conflicts with --no-healthcheck ----

@pytest.mark.parametrize("opt,flag", [("Interval", "--health-interval"), ("Timeout", "--health-timeout"),
                                      ("StartPeriod", "--health-start-period"),
                                      ("StartInterval", "--health-start-interval"),
                                      ("Retries", "--health-retries")])
def test_any_health_option_with_no_healthcheck(opt, flag):
    body = {"Image": "busybox", "Cmd": ["true"], "Healthcheck": {"Test": ["NONE"], opt: 1000000000}}
    assert flag in denied_by(create(body), "health-with-no-healthcheck")
    body["Healthcheck"]["Test"] = ["CMD", "true"]
    allowed(create(body))
