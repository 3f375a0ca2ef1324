"""Health sidecar: the guide's check semantics and exit-on-unhealthy for stock Docker."""
