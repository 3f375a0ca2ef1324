"""`dockguard creds`: status, key rotation and enabling of the encrypted login store.

Exit status: 0 done, 1 refused or failed (the message says why), 2 usage error.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

from dockguard.creds import enable as en
from dockguard.creds import store as S

DIR_HELP = "the docker config directory (default: $DOCKER_CONFIG, else ~/.docker, as the docker CLI)"


def register(sub, name):
    p = sub.add_parser(name, help="encrypted registry logins (docker-credential-dockguard)",
                       description="Encrypted registry logins: the docker-credential-dockguard store.")
    csub = p.add_subparsers(dest="creds_command", required=True, metavar="COMMAND")

    def command(name, func, help, description, json_help="print the result as JSON"):
        """One subcommand with the options every creds command takes (--config, --json)."""
        c = csub.add_parser(name, help=help, description=description)
        c.add_argument("--config", metavar="DIR", help=DIR_HELP)
        c.add_argument("--json", action="store_true", help=json_help)
        c.set_defaults(func=func)
        return c

    command("status", cmd_status, "registries logged in (never secrets), the key's id and age",
            "List the registries with a stored login (never their secrets), the key's id and age, "
            "and plain-text logins left in config.json.",
            json_help="print one JSON object instead of text")
    command("rotate-key", cmd_rotate, "re-encrypt every login under a new key (no new login needed)",
            "Re-encrypt every stored login under a new AES-256 key, atomically: interrupted at any "
            "point, either the old or the new key and store work.")
    enb = command("enable", cmd_enable, 'set "credsStore": "dockguard" and encrypt plain-text logins',
                  'Set "credsStore": "dockguard" in config.json and move the logins it holds in plain '
                  "text (base64) into the encrypted store.")
    enb.add_argument("--force", action="store_true",
                     help="replace another credsStore already configured (its logins become unreachable)")


def _dir(args) -> str:
    return args.config or S.config_dir()


def _fail(exc: Exception) -> int:
    print(f"dockguard: error: creds: {exc}", file=sys.stderr)
    return 1


def human_age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def status_report(directory: str) -> dict:
    report = S.Vault(directory).status()
    config_path = os.path.join(directory, en.CONFIG_NAME)
    conf = en.read_config(config_path)
    report["config_json"] = {"path": config_path, "credsStore": conf.get("credsStore"),
                             "credHelpers": conf.get("credHelpers") or {},
                             "plaintext_auths": en.plaintext_auths(config_path)}
    return report


def cmd_status(args) -> int:
    try:
        report = status_report(_dir(args))
    except S.CredsError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    key, conf = report["key"], report["config_json"]
    print(f"config dir:  {report['config_dir']}")
    if key["present"]:
        created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(key["created"]))
        print(f"key:         {key['path']} (id {key['id']}, created {created}, age {human_age(key['age_seconds'])})")
    elif key["removed_key_id"]:
        print(f"key:         {key['path']} REMOVED (the logins below need docker login again)")
    else:
        print("key:         none yet (created at the first docker login through the helper)")
    print(f"credsStore:  {conf['credsStore'] or '(not set: logins go to config.json in plain text)'}")
    if not report["registries"]:
        print("registries:  none")
    for reg in report["registries"]:
        if reg["state"] == "ok":
            print(f"  {reg['server']}  user {reg['username']}")
        else:
            print(f"  {reg['server']}  key removed: run docker login {reg['server']} again")
    for url in conf["plaintext_auths"]:
        print(f"WARNING: {conf['path']} holds the login for {url} in plain text: run `dockguard creds enable`")
    return 0


def cmd_rotate(args) -> int:
    try:
        res = S.Vault(_dir(args)).rotate()
    except S.CredsError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(res))
    elif res["new_key_id"] is None:
        print("no key yet: nothing to rotate (the first docker login creates one)")
    else:
        print(f"key {res['old_key_id']} replaced by {res['new_key_id']}: {res['reencrypted']} login(s) "
              "re-encrypted, no new login needed")
    return 0


def cmd_enable(args) -> int:
    try:
        res = en.enable(_dir(args), force=args.force)
    except S.CredsError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f'{res["config"]}: "credsStore": "dockguard"')
    for url in res["migrated"]:
        print(f"  moved the plain-text login for {url} into the encrypted store")
    if shutil.which(en.HELPER_NAME) is None:
        print(f"WARNING: {en.HELPER_NAME} is not on PATH: docker login will fail until it is "
              "(as root: dockguard install --creds USER puts it in /usr/local/bin)", file=sys.stderr)
    return 0
