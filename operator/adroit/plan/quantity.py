"""Kubernetes memory quantities, in MiB."""

import re

_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


def mebibytes(quantity: str) -> int:
    """'1500Mi' -> 1500, '2Gi' -> 2048, '1G' -> 953 (rounded down)."""
    match = _QUANTITY.match(quantity.strip())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)] // 2**20)
