"""Thin kopf wiring: read the world, ask adroit.plan what it should be, apply the difference.

Importing this package registers the handlers with kopf.
"""

from adroit.handlers import flavors, startup, trains

__all__ = ["flavors", "startup", "trains"]
