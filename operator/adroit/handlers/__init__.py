"""Thin kopf wiring: start the reconciler, wake it on every change it should see.

Importing this package registers the handlers with kopf.
"""

from adroit.handlers import admission, reconciler, startup

__all__ = ["admission", "reconciler", "startup"]
