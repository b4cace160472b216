"""Kubernetes resource quantities: in MiB for memory, and by value for comparing."""

import re
from decimal import Decimal, InvalidOperation

_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|[a-zA-Z]*)$")


def quantity_value(quantity: str) -> Decimal | None:
    """The value of a quantity ('1Gi', '1024Mi', '500m', '1e3'), or None if it is not one."""
    match = _QUANTITY.match(quantity.strip())
    if not match:
        return None
    number, unit = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    if unit == "m":
        return value / 1000
    if unit not in _UNITS:
        return None
    return value * _UNITS[unit]


def mebibytes(quantity: str) -> int:
    """'1500Mi' -> 1500, '2Gi' -> 2048, '1G' -> 953 (rounded down). The API server writes a
    byte count that is not whole in milli units: '1.1Gi' is stored as '1181116006400m'."""
    value = quantity_value(quantity)
    if value is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(value // 2**20)
