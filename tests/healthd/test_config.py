"""Label parsing and validation (shared with authz): no Docker needed."""
import pytest

from healthd.config import (CheckSpec, check_labels, parse_bool, parse_duration,
                            spec_from_labels)

P = "dockguard.health."


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("1s", 10**9), ("500ms", 5 * 10**8), ("1m30s", 90 * 10**9),
    ("1.5h", 5400 * 10**9), ("2us", 2000), ("3µs", 3000), ("7ns", 7), (".5s", 5 * 10**8),
    ("1h2m3s4ms", 3723004 * 10**6), ("-1s", -(10**9)), ("+2s", 2 * 10**9),
])
def test_go_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "10", "1x", "s", "1 s", " 1s", "1s ", "--1s",
                                  "1.s.", "abc", "3000000h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_go_bools():
    assert parse_bool("true") and parse_bool("1") and parse_bool("T")
    assert not parse_bool("false") and not parse_bool("0")
    with pytest.raises(ValueError):
        parse_bool("yes")


def test_no_labels_no_problems():
    assert check_labels({}) == []
    assert check_labels({"other": "x", "dockguard.hooks": "y"}) == []
    assert spec_from_labels({"a": "b"}) == (None, [])


def test_defaults_and_zero_means_default():
    spec, problems = spec_from_labels({P + "cmd": "test -f /ok", P + "interval": "0",
                                       P + "retries": "0", P + "timeout": "0s"})
    assert problems == []
    assert spec == CheckSpec(kind="cmd", argv=("/bin/sh", "-c", "test -f /ok"))
    assert (spec.interval, spec.timeout, spec.start_period, spec.retries,
            spec.exit_on_unhealthy) == (30.0, 30.0, 0.0, 3, False)


def test_empty_option_means_default():
    spec, problems = spec_from_labels({P + "tcp": "80", P + "interval": "", P + "retries": "",
                                       P + "start-period": "", P + "exit-on-unhealthy": ""})
    assert problems == [] and spec == CheckSpec(kind="tcp", port=80)
    assert check_labels({P + "tcp": ""})                      # but a check needs a value


def test_full_spec():
    spec, problems = spec_from_labels({
        P + "http": "8080/healthz?x=1", P + "interval": "500ms", P + "timeout": "2s",
        P + "start-period": "1m30s", P + "retries": "5", P + "exit-on-unhealthy": "true"})
    assert problems == []
    assert (spec.kind, spec.port, spec.path) == ("http", 8080, "/healthz?x=1")
    assert (spec.interval, spec.timeout, spec.start_period, spec.retries,
            spec.exit_on_unhealthy) == (0.5, 2.0, 90.0, 5, True)


def test_http_default_path_and_tcp():
    assert spec_from_labels({P + "http": "80"})[0].path == "/"
    assert spec_from_labels({P + "tcp": "6379"})[0].port == 6379


def test_json_array_cmd_runs_without_shell():
    spec, _ = spec_from_labels({P + "cmd": '["/bin/test", "-f", "/ok"]'})
    assert spec.argv == ("/bin/test", "-f", "/ok")


@pytest.mark.parametrize("labels,needle", [
    ({P + "cmd": "true", P + "interval": "-1s"}, "must not be negative"),
    ({P + "cmd": "true", P + "timeout": "5"}, "invalid duration"),
    ({P + "cmd": "true", P + "start-period": "soon"}, "invalid duration"),
    ({P + "cmd": "true", P + "retries": "-2"}, "must not be negative"),
    ({P + "cmd": "true", P + "retries": "three"}, "not an integer"),
    ({P + "cmd": "true", P + "retries": "99999999999"}, "int32"),
    ({P + "cmd": "true", P + "exit-on-unhealthy": "yes"}, "invalid boolean"),
    ({P + "cmd": "true", P + "interval": "10us"}, "at least 1ms"),
    ({P + "cmd": "  "}, "empty command"),
    ({P + "cmd": "[1, 2]"}, "list of strings"),
    ({P + "cmd": "[oops"}, "JSON array"),
    ({P + "tcp": "0"}, "invalid port"),
    ({P + "tcp": "70000"}, "invalid port"),
    ({P + "http": "eighty/x"}, "invalid port"),
    ({P + "http": "80/a b"}, "invalid path"),
    ({P + "tcp": "80", P + "cmd": "true"}, "only one of"),
    ({P + "intervall": "1s"}, "unknown label"),
])
def test_problems_are_reported_and_named(labels, needle):
    problems = check_labels(labels)
    assert problems and any(needle in p for p in problems), problems
    assert spec_from_labels(labels) == (None, problems)
    # the label at fault is named in the message
    bad = [k for k in labels if k.startswith(P)]
    assert any(any(k in p for k in bad) for p in problems) or "only one of" in needle


def test_all_problems_reported_at_once():
    problems = check_labels({P + "cmd": "true", P + "interval": "-1s", P + "retries": "x"})
    assert len(problems) == 2


def test_options_only_need_an_engine_healthcheck():
    labels = {P + "exit-on-unhealthy": "true"}
    assert check_labels(labels) == []          # authz cannot see the image's HEALTHCHECK
    spec, problems = spec_from_labels(labels, engine_healthcheck=True)
    assert spec.kind == "engine" and spec.exit_on_unhealthy and problems == []
    spec, problems = spec_from_labels(labels, engine_healthcheck=False)
    assert spec is None and "without a check" in problems[0]


def test_sidecar_check_wins_over_engine_healthcheck():
    spec, _ = spec_from_labels({P + "tcp": "80"}, engine_healthcheck=True)
    assert spec.kind == "tcp"


def test_container_check_overrides_the_images():
    from healthd.config import container_over_image
    merged = {P + "cmd": "false", P + "tcp": "80", P + "interval": "1s"}
    image = {P + "cmd": "false", P + "interval": "5s"}
    assert container_over_image(merged, image) == {P + "tcp": "80", P + "interval": "1s"}
    # both from the container itself (or both from the image): still an error
    assert container_over_image(merged, {}) == merged
    assert container_over_image(merged, {P + "cmd": "false", P + "tcp": "80"}) == merged
    assert container_over_image({P + "tcp": "80"}, image) == {P + "tcp": "80"}
