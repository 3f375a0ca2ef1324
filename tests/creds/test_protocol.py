"""The real `docker-credential-dockguard` program driven as the docker CLI drives it.

The CLI (docker-credential-helpers' client package) runs `docker-credential-dockguard ACTION`,
writes the input with no trailing newline except for `store` (a json.Encoder line), reads
stdout, and recognises a missing login only by the exact text
"credentials not found in native keychain" with a non-zero exit.
"""
from __future__ import annotations

import json
import os
import subprocess

from dockguard.creds import store as S

from .conftest import SECRET, USER

URL = "127.0.0.1:5000"


def store_input(url=URL, user=USER, secret=SECRET) -> str:
    # exactly what Go's json.NewEncoder(buffer).Encode(creds) writes
    return json.dumps({"ServerURL": url, "Username": user, "Secret": secret}, separators=(",", ":")) + "\n"


def test_store_get_list_erase(helper, cfg):
    res = helper("store", store_input())
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = helper("get", URL)
    assert res.returncode == 0
    assert json.loads(res.stdout) == {"ServerURL": URL, "Username": USER, "Secret": SECRET}
    assert res.stdout.endswith("}\n") and res.stdout.count("\n") == 1
    res = helper("list", "unused")
    assert (res.returncode, json.loads(res.stdout)) == (0, {URL: USER})
    res = helper("erase", URL)
    assert (res.returncode, res.stdout) == (0, "")
    res = helper("list", "unused")
    assert json.loads(res.stdout) == {}


def test_not_found_message_exact(helper):
    for action in ("get", "erase"):
        res = helper(action, "never.example")
        assert res.returncode == 1
        assert res.stdout == "credentials not found in native keychain\n"
        assert res.stderr == ""  # an anonymous pull is normal: nothing on the user's terminal


def test_token_login_round_trips(helper):
    # the CLI stores an identity token as Username "<token>"
    helper("store", store_input("https://index.docker.io/v1/", "<token>", "idtok"))
    res = helper("get", "https://index.docker.io/v1/")
    assert json.loads(res.stdout)["Username"] == "<token>"
    assert json.loads(res.stdout)["Secret"] == "idtok"


def test_input_read_as_go_reads_it(helper):
    # keys case-insensitive, CRLF and a trailing newline around the URL
    body = '{"serverurl": "reg.example",\r\n "USERNAME": "u", "secret": "s"}\r\n'
    assert helper("store", body).returncode == 0
    assert json.loads(helper("get", "  reg.example\r\n").stdout)["Secret"] == "s"


def test_missing_fields_library_messages(helper):
    res = helper("store", json.dumps({"Username": "u", "Secret": "s"}))
    assert (res.returncode, res.stdout) == (1, "no credentials server URL\n")
    res = helper("store", json.dumps({"ServerURL": URL, "Secret": "s"}))
    assert (res.returncode, res.stdout) == (1, "no credentials username\n")
    res = helper("get", "  \n")
    assert (res.returncode, res.stdout) == (1, "no credentials server URL\n")
    res = helper("store", "not json " + SECRET)
    assert res.returncode == 1 and SECRET not in res.stdout and "Traceback" not in res.stdout + res.stderr


def test_version_usage_unknown(helper):
    res = helper("version")
    assert res.returncode == 0 and res.stdout.startswith("docker-credential-dockguard (dockguard) ")
    res = helper("frobnicate")
    assert res.returncode == 2 and "unknown action" in res.stdout
    res = helper("--help")
    assert res.returncode == 0 and "store|get|erase|list|version" in res.stdout


def test_removed_key_message_through_the_binary(helper, cfg):
    helper("store", store_input())
    os.unlink(cfg / S.KEY_NAME)
    res = helper("get", URL)
    assert res.returncode == 1
    assert res.stdout.startswith("the key was removed: run docker login again")
    assert "base64" not in res.stdout and "Traceback" not in res.stdout + res.stderr
    # push/pull drop a failed get and go on anonymously: the user reads why on stderr
    assert res.stderr.startswith("docker-credential-dockguard: the key was removed: run docker login again")


def test_failures_are_one_line_without_secret_or_traceback(helper, cfg):
    helper("store", store_input())
    doc = json.loads((cfg / S.STORE_NAME).read_text())
    doc["entries"]["evil.example"] = doc["entries"].pop(URL)
    (cfg / S.STORE_NAME).write_text(json.dumps(doc))
    for action, stdin in (("get", "evil.example"), ("list", ""), ("store", store_input("x.example")),
                          ("erase", URL)):
        res = helper(action, stdin)
        assert res.returncode == 1, action
        assert res.stdout.count("\n") == 1 and "modified outside dockguard" in res.stdout
        out = res.stdout + res.stderr
        assert "Traceback" not in out and SECRET not in out


def test_unsafe_key_mode_through_the_binary(helper, cfg):
    helper("store", store_input())
    os.chmod(cfg / S.KEY_NAME, 0o644)
    res = helper("get", URL)
    assert res.returncode == 1 and "chmod 600" in res.stdout and SECRET not in res.stdout


def test_concurrent_logins_lose_nothing(helper_bin, cfg):
    """Many `store` at once (parallel docker logins): every one lands."""
    env = {"PATH": "/usr/bin:/bin", "DOCKER_CONFIG": str(cfg)}
    n = 12
    procs = [subprocess.Popen([str(helper_bin), "store"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=env, text=True) for _ in range(n)]
    for i, p in enumerate(procs):
        p.stdin.write(store_input(f"reg{i}.example", f"user{i}", f"secret{i}"))
        p.stdin.close()
    assert [p.wait(60) for p in procs] == [0] * n
    listed = json.loads(subprocess.run([str(helper_bin), "list"], env=env, capture_output=True,
                                       text=True).stdout)
    assert listed == {f"reg{i}.example": f"user{i}" for i in range(n)}
    for i in (0, n - 1):
        out = subprocess.run([str(helper_bin), "get"], input=f"reg{i}.example", env=env,
                             capture_output=True, text=True).stdout
        assert json.loads(out)["Secret"] == f"secret{i}"


def test_installed_front_skips_site(helper_bin):
    text = helper_bin.read_text()
    first = text.splitlines()[0]
    assert first.startswith("#!/") and first.endswith(" -IS")
    assert ".pyenv/shims" not in first
    assert os.stat(helper_bin).st_mode & 0o777 == 0o755


def test_unexpected_error_names_only_its_type(monkeypatch, cfg):
    """Whatever goes wrong inside, the output is one line with no secret and no traceback."""
    import io

    from dockguard.creds import helper as H

    def boom(self, url, username, secret):
        raise RuntimeError(f"leaky message with {secret}")

    monkeypatch.setattr(S.Vault, "store", boom)
    out, err = io.StringIO(), io.StringIO()
    code = H.run("store", io.BytesIO(store_input().encode()), out, {"DOCKER_CONFIG": str(cfg)}, err)
    assert code == 1
    assert out.getvalue() == "docker-credential-dockguard: internal error (RuntimeError)\n"
    assert SECRET not in out.getvalue() + err.getvalue()


def test_oversized_input_refused(helper):
    res = helper("store", store_input(secret="x" * (2 << 20)))
    assert res.returncode == 1 and "invalid input" in res.stdout and len(res.stdout) < 200
