"""Memory quantities as the API server writes them back."""

import pytest

from adroit.kube.read import quota_of
from adroit.plan.quantity import mebibytes


@pytest.mark.parametrize(
    ("quantity", "mib"),
    [("1500Mi", 1500), ("2Gi", 2048), ("1G", 953), ("1181116006400m", 1126), ("0", 0)],
)
def test_memory_in_mebibytes(quantity: str, mib: int) -> None:
    assert mebibytes(quantity) == mib


def test_a_quota_that_is_no_whole_number_of_bytes_is_read() -> None:
    """`kubectl create quota --hard=requests.memory=1.1Gi` is stored in milli units."""
    quota = {"status": {"hard": {"requests.memory": "1181116006400m"}, "used": {}}}
    found = quota_of([quota])
    assert found is not None
    assert found.free_mib == 1126


def test_what_is_no_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="not a memory quantity"):
        mebibytes("lots")
