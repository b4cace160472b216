"""The operator's signature on the trains it forms, and what an unsigned train loses."""

from adroit.api.flavor import FlavorSpec
from adroit.api.train import Car, TrainSpec
from adroit.plan.revision import flavor_revision
from adroit.plan.trust import (
    owned_fields,
    signed_by_operator,
    train_signature,
    without_owned_fields,
)

SPEC = FlavorSpec.model_validate(
    {"owner": "ads", "model": {"name": "m", "version": "v1", "runtime": "sklearn"}}
)
KEY = b"k" * 32


def formed() -> TrainSpec:
    car = Car(flavor="ads", revision=flavor_revision(SPEC), image="repo/sk:1", author="carol")
    return TrainSpec(engineer="carol", cars=[car], runtime_release=True)


def test_only_the_same_name_and_spec_carry_the_signature() -> None:
    spec = formed()
    signature = train_signature("train-1", spec, KEY)
    assert signed_by_operator("train-1", spec, signature, KEY)
    assert not signed_by_operator("train-2", spec, signature, KEY)
    other = spec.model_copy(update={"runtime_release": False})
    assert not signed_by_operator("train-1", other, signature, KEY)
    assert not signed_by_operator("train-1", spec, signature, b"x" * 32)
    assert not signed_by_operator("train-1", spec, None, KEY)


def test_an_unsigned_train_loses_every_operator_owned_field() -> None:
    lying = Car(flavor="ads", revision="deadbeef", spec=SPEC, image="evil:1", shadow_image="e:2")
    spec = TrainSpec(engineer="bob", cars=[lying], runtime_release=True)
    untrusted = without_owned_fields(spec)
    assert set(untrusted.ignored) == {
        "spec.runtimeRelease",
        "spec.cars[0] (ads).image",
        "spec.cars[0] (ads).shadowImage",
        "spec.cars[0] (ads).revision (it is not the hash of the car's spec)",
    }
    [car] = untrusted.spec.cars
    assert not untrusted.spec.runtime_release
    assert car.image is None
    assert car.shadow_image is None
    assert car.revision == flavor_revision(SPEC)
    assert owned_fields(untrusted.spec) == []
