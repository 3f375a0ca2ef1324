"""Test and sandbox support, not product code: private dockerds in namespaces of their own
(daemon.py, namespaces.py) and the authz plugin run as a process (plugin.py).

Used by tests/, bench/ and `dockguard sandbox`; nothing on a product path (the plugin,
dockguard-runtime, the hooks, healthd, install) imports this package.
"""
