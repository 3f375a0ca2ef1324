"""The Flask app: Docker's plugin protocol and nothing else.

    POST /Plugin.Activate       -> {"Implements": ["authz"]}
    POST /AuthZPlugin.AuthZReq  -> {"Allow": bool, "Msg": str, "Err": ""}
    POST /AuthZPlugin.AuthZRes  -> {"Allow": true, ...}

Whatever goes wrong inside, the answer is a well-formed denial (for AuthZReq) — never a 500,
which dockerd would report as a plugin failure instead of our message.
"""
from __future__ import annotations

import json
import traceback

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from .engine import MAX_BODY, Decision, Engine

CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
_ACTIVATE = json.dumps({"Implements": ["authz"]})
_ALLOW = json.dumps(Decision(True).as_json())


def create_app(engine: Engine) -> Flask:
    app = Flask("dockguard-authz")
    # The envelope carries the body base64-encoded, plus headers.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY * 2

    def reply(text: str) -> Response:
        return Response(text, status=200, content_type=CONTENT_TYPE)

    @app.post("/Plugin.Activate")
    def activate():
        return reply(_ACTIVATE)

    @app.post("/AuthZPlugin.AuthZReq")
    def authz_req():
        try:
            decision = engine.request(request.get_data(cache=False))
        except RequestEntityTooLarge as exc:  # raised by get_data: the clear message, not "internal"
            return too_large(exc)
        except Exception as exc:  # noqa: BLE001 - fail closed with a message, never a 500
            traceback.print_exc()
            decision = Decision(False, f"dockguard: internal error, request denied: {exc!r}")
        if decision.allow:
            return reply(_ALLOW)
        return reply(json.dumps(decision.as_json()))

    @app.post("/AuthZPlugin.AuthZRes")
    def authz_res():
        try:
            engine.response(request.get_data(cache=False))
        except Exception:  # noqa: BLE001 - the response is already made; only bookkeeping failed
            traceback.print_exc()
        return reply(_ALLOW)

    @app.errorhandler(413)
    def too_large(_exc):
        return reply(json.dumps(Decision(False, "dockguard: [malformed-request] plugin request too "
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
