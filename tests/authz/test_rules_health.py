"""health-with-no-healthcheck, health-labels (validated with healthd's own parser)."""
from __future__ import annotations

import pytest

from .helpers import allowed, create, create_problems, decide, denied_by


def hcheck(**h):
    return {"Image": "x", "Cmd": ["true"], "Healthcheck": h}


@pytest.mark.parametrize("opts,flags", [
    ({"Interval": 5_000_000_000}, "--health-interval"),
    ({"Timeout": 1_000_000_000}, "--health-timeout"),
    ({"StartPeriod": 1_000_000_000}, "--health-start-period"),
    ({"Retries": 3}, "--health-retries"),
    ({"Interval": 1, "Retries": 2}, "--health-interval, --health-retries"),
])
def test_none_with_options(opts, flags):
    msg = denied_by(create(hcheck(Test=["NONE"], **opts)), "health-with-no-healthcheck")
    assert f"--no-healthcheck with {flags}" in msg


def test_none_with_options_spellings():
    denied_by(create(hcheck(Test=["none"], Interval=1)), "health-with-no-healthcheck")
    denied_by(create('{"Image":"x","Cmd":["true"],"healthcheck":{"test":["NONE"],"INTERVAL":1}}'),
              "health-with-no-healthcheck")
    # repeated objects merge as in Go: the options of the first still apply
    denied_by(create('{"Image":"x","Cmd":["true"],"Healthcheck":{"Interval":1},"Healthcheck":{"Test":["NONE"]}}'),
              "health-with-no-healthcheck")


@pytest.mark.parametrize("h", [{"Test": ["NONE"]}, {"Test": ["NONE"], "Interval": 0},
                               {"Test": ["CMD", "true"], "Interval": 5_000_000_000},
                               {"Test": ["CMD-SHELL", "true"], "Retries": 3}, {"Interval": 1}, {}])
def test_benign_healthchecks(h):
    allowed(create(hcheck(**h)))


def test_service_healthcheck():
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Healthcheck": {"Test": ["NONE"], "Retries": 2}}}}
    denied_by(decide("POST", "/services/create", body), "health-with-no-healthcheck")
    denied_by(decide("POST", "/services/s/update", body), "health-with-no-healthcheck")
    body["TaskTemplate"]["ContainerSpec"]["Healthcheck"] = {"Test": ["NONE"]}
    allowed(decide("POST", "/services/create", body))


def test_wrongly_typed_health_option():
    assert "must be an integer" in denied_by(create(hcheck(Test=["NONE"], Interval="5s")), "malformed-request")


# ---- dockguard.health.* labels ----

def labels(**kv):
    return {"Image": "x", "Cmd": ["true"], "Labels": {f"dockguard.health.{k.replace('_', '-')}": v for k, v in kv.items()}}


@pytest.mark.parametrize("kv,what", [
    ({"cmd": "true", "interval": "-1s"}, "dockguard.health.interval='-1s'"),
    ({"cmd": "true", "interval": "soon"}, "dockguard.health.interval='soon'"),
    ({"tcp": "99999"}, "dockguard.health.tcp"),
    ({"http": "80/a b"}, "dockguard.health.http"),
    ({"cmd": "true", "retries": "x"}, "not an integer"),
    ({"cmd": "true", "retries": "-1"}, "must not be negative"),
    ({"cmd": "true", "tcp": "80"}, "declare only one of"),
    ({"cmd": "true", "frobnicate": "1"}, "dockguard.health.frobnicate: unknown label"),
    ({"cmd": "[1, 2]"}, "dockguard.health.cmd"),
    ({"cmd": "  "}, "empty command"),
])
def test_bad_health_labels(kv, what):
    msg = denied_by(create(labels(**kv)), "health-labels")
    assert what in msg


@pytest.mark.parametrize("kv", [
    {"cmd": "true", "interval": "2s"}, {"tcp": "8080"}, {"http": "8080/healthz", "timeout": "1m30s"},
    {"cmd": '["/bin/check", "--fast"]', "retries": "5", "start-period": "10s"},
])
def test_good_health_labels(kv):
    allowed(create(labels(**kv)))


def test_other_labels_are_not_read():
    assert create_problems("health-labels", {"Image": "x", "Labels": {"dockguard.healthx": "?", "a": "b"}}) is None


def test_label_keys_are_exact_map_keys():
    # Labels are a Go map: a case variant is another label, not a health label
    assert create_problems("health-labels", {"Image": "x", "Labels": {"Dockguard.Health.Interval": "-1s"}}) is None


# --- labels as dockerd merges them: the image's under the request's -------------------------

def test_image_health_label_is_judged():
    images = {"imported": {"Labels": {"dockguard.health.cmd": "true", "dockguard.health.interval": "-1s"}}}
    out = create({"Image": "imported", "Cmd": ["true"]}, image_configs=images)
    assert "dockguard.health.interval='-1s'" in denied_by(out, "health-labels")


def test_request_health_label_overrides_the_image_one():
    images = {"imported": {"Labels": {"dockguard.health.cmd": "true", "dockguard.health.interval": "-1s"}}}
    body = {"Image": "imported", "Cmd": ["true"], "Labels": {"dockguard.health.interval": "5s"}}
    allowed(create(body, image_configs=images))


def test_failed_image_lookup_denies_for_health_labels_too():
    out = create({"Image": "imported", "Cmd": ["true"]}, fail={"image_config"})
    assert not out.allow and "could not look up image_config" in out.msg
