"""The Flask app: Docker's plugin protocol and nothing else.

    POST /Plugin.Activate       -> {"Implements": ["authz"]}
    POST /AuthZPlugin.AuthZReq  -> {"Allow": bool, "Msg": str, "Err": ""}
    POST /AuthZPlugin.AuthZRes  -> {"Allow": true, ...}

Whatever goes wrong inside, the answer is a well-formed denial (for AuthZReq) — never a 500,
which dockerd would report as a plugin failure instead of our message.
"""
from __future__ import annotations

import json
import sys
import traceback

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from .engine import MAX_BODY, Decision, Engine

CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
_ACTIVATE = json.dumps({"Implements": ["authz"]})
_ALLOW = json.dumps(Decision(True).as_json())


class LiveEngine:
    """The engine the app answers with, swapped whole on a policy reload.

    `rebuild(old)` returns a new Engine from the policy file, or raises (PolicyError) when the
    file is wrong: then the last good engine stays and the reason is logged. A swap is one
    attribute store, so a request sees either the old engine or the new one, never a mix.
    """

    def __init__(self, engine: Engine, rebuild=None):
        self.engine = engine
        self.rebuild = rebuild

    def reload(self) -> bool:
        if self.rebuild is None:
            print("dockguard authz: reload: no policy file to reload (built-in policy)",
                  file=sys.stderr, flush=True)
            return False
        try:
            new = self.rebuild(self.engine)
        except Exception as exc:  # noqa: BLE001 - keep serving with the last good policy
            print(f"dockguard authz: reload failed, keeping policy {self.engine.policy.source}: {exc}",
                  file=sys.stderr, flush=True)
            return False
        self.engine = new
        print(f"dockguard authz: policy reloaded from {new.policy.source}", file=sys.stderr, flush=True)
        return True


REQ = "/AuthZPlugin.AuthZReq"
RES = "/AuthZPlugin.AuthZRes"
_ALLOW_B = _ALLOW.encode()


def answer(live: LiveEngine, endpoint: str, data: bytes) -> bytes:
    """The JSON answer to AuthZReq or AuthZRes for one envelope: the hot path, shared by the
    Flask routes and the lean loop of authz/worker.py (one implementation of the decision)."""
    if endpoint == RES:
        try:
            live.engine.response(data)
        except Exception:  # noqa: BLE001 - the response is already made; only bookkeeping failed
            traceback.print_exc()
        return _ALLOW_B
    try:
        decision = live.engine.request(data)
    except Exception as exc:  # noqa: BLE001 - fail closed with a message, never a 500
        traceback.print_exc()
        decision = Decision(False, f"internal error, request denied: {exc!r}")
    if decision.allow:
        return _ALLOW_B
    return json.dumps(decision.as_json()).encode()


def create_app(engine: Engine, rebuild=None) -> Flask:
    """The plugin app; `app.extensions["dockguard"]` is its LiveEngine (reload() on SIGHUP)."""
    app = Flask("dockguard-authz")
    live = LiveEngine(engine, rebuild)
    app.extensions["dockguard"] = live
    # The envelope carries the body base64-encoded, plus headers.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY * 2

    def reply(text: str | bytes) -> Response:
        return Response(text, status=200, content_type=CONTENT_TYPE)

    @app.post("/Plugin.Activate")
    def activate():
        return reply(_ACTIVATE)

    @app.post("/AuthZPlugin.AuthZReq")
    def authz_req():
        try:
            data = request.get_data(cache=False)
        except RequestEntityTooLarge as exc:  # raised by get_data: the clear message, not "internal"
            return too_large(exc)
        return reply(answer(live, REQ, data))

    @app.post("/AuthZPlugin.AuthZRes")
    def authz_res():
        try:
            data = request.get_data(cache=False)
        except Exception:  # noqa: BLE001 - the response is already made; only bookkeeping failed
            traceback.print_exc()
            data = b""
        return reply(answer(live, RES, data))

    @app.errorhandler(413)
    def too_large(_exc):
        return reply(json.dumps(Decision(False, "[malformed-request] plugin request too "
                                               "large: refused (fail closed)").as_json()))

    @app.errorhandler(404)
    def not_found(_exc):
        return Response(json.dumps({"Err": "dockguard: no such plugin endpoint"}), status=404,
                        content_type=CONTENT_TYPE)

    @app.errorhandler(405)
    def bad_method(_exc):
        return Response(json.dumps({"Err": "dockguard: plugin endpoints take POST"}), status=405,
                        content_type=CONTENT_TYPE)

    return app
