"""Content hashes that name what a flavor runs and what the operator applied."""

import hashlib
import json
from typing import Any

from adroit.api.flavor import FlavorSpec


def digest(data: Any, length: int) -> str:
    """A hex digest of JSON data, the same for equal data whatever its key order."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def flavor_revision(spec: FlavorSpec) -> str:
    """The revision of a Flavor spec: equal specs, defaults included, hash alike."""
    return digest(spec.to_wire(), 8)
