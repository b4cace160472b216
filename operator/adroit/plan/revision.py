"""Content hashes that name what a flavor runs."""

import hashlib
import json
from typing import Any

from adroit.api.flavor import FlavorSpec


def _digest(data: Any, length: int) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def flavor_revision(spec: FlavorSpec) -> str:
    """The revision of a Flavor spec: equal specs, defaults included, hash alike."""
    return _digest(spec.to_wire(), 8)
