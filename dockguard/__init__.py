"""dockguard: hardening, hook and health extensions for a stock Docker engine."""
__version__ = "0.1.0"
