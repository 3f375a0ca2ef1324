"""A bare WSGI authz plugin that allows everything: the benchmark's baseline for what any
plugin under gunicorn costs, so the ratio isolates what dockguard's policy adds."""

_ACTIVATE = b'{"Implements": ["authz"]}'
_ALLOW = b'{"Allow": true, "Msg": "", "Err": ""}'


def app(environ, start_response):
    environ["wsgi.input"].read()
    body = _ACTIVATE if environ.get("PATH_INFO") == "/Plugin.Activate" else _ALLOW
    start_response("200 OK", [("Content-Type", "application/vnd.docker.plugins.v1+json"),
                              ("Content-Length", str(len(body)))])
    return [body]
