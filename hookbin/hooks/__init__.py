"""The hook programs: network-hook, lxcfs-hook, docker-hooks (installed into <root>/hooks).

Each reads the OCI state from stdin, prints errors on stderr, exits non-zero on failure,
never calls Docker, and imports only the stdlib and hookbin.oci (they run under -I -S).
"""
