"""OCI hook support for stock Docker: runtime wrapper, hook-spec validation, hook programs."""
