"""Encrypted registry logins: a docker credential helper backed by an AES-256-GCM store.

Kept empty on purpose: the docker CLI starts `docker-credential-dockguard` on every push and
pull, so importing this package must cost nothing beyond the modules the helper uses.
"""
