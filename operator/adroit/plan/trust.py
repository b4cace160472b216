"""Which Train fields only the operator may set, and whether it set them.

A Train the operator forms carries fields it computed: `runtimeRelease` (no
approval needed), each car's `image` and `shadowImage` (what production will
run), `author` and `authors` (who may not approve), and a `revision` that
names the spec. Written by anyone else, each would open the gate: so the
webhook refuses them from anyone but the operator, and the reconciler honours
them only on a train that carries the operator's signature (an HMAC over the
train's name and spec, with the key it keeps for approvals). On any other train
they are recomputed or ignored, and the history says so.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass

from adroit.api.flavor import FlavorSpec
from adroit.api.settings import Settings
from adroit.api.train import Car, TrainSpec
from adroit.plan.revision import flavor_revision

SIGNATURE = "adroit.dev/formed-by-operator"


def train_signature(name: str, spec: TrainSpec, key: bytes) -> str:
    """The operator's signature on a train it formed: its name and spec, as parsed."""
    canonical = json.dumps(
        {"name": name, "spec": spec.to_wire()}, sort_keys=True, separators=(",", ":")
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def signed_by_operator(name: str, spec: TrainSpec, signature: str | None, key: bytes) -> bool:
    return signature is not None and hmac.compare_digest(
        signature, train_signature(name, spec, key)
    )


def owned_fields(spec: TrainSpec) -> list[str]:
    """The operator-owned fields a Train spec sets, as paths a person can find."""
    found = ["spec.runtimeRelease"] if spec.runtime_release else []
    for i, car in enumerate(spec.cars):
        at = f"spec.cars[{i}] ({car.flavor})"
        found += [f"{at}.image"] if car.image else []
        found += [f"{at}.shadowImage"] if car.shadow_image else []
        found += [f"{at}.author"] if car.author else []
        found += [f"{at}.authors"] if car.authors else []
        if car.spec is not None and car.revision != flavor_revision(car.spec):
            found.append(f"{at}.revision (it is not the hash of the car's spec)")
    return found


@dataclass(frozen=True)
class Untrusted:
    """A train's spec with the operator-owned fields recomputed or dropped, and which."""

    spec: TrainSpec
    ignored: tuple[str, ...]


def without_owned_fields(spec: TrainSpec) -> Untrusted:
    """What the reconciler honours of a train the operator did not sign: revisions from the
    carried specs, images from the catalog, no runtime release, authors from the Flavors."""
    ignored = tuple(owned_fields(spec))
    if not ignored:
        return Untrusted(spec, ())
    cars = [_plain(car) for car in spec.cars]
    return Untrusted(spec.model_copy(update={"runtime_release": False, "cars": cars}), ignored)


def _plain(car: Car) -> Car:
    update: dict[str, object] = {
        "image": None,
        "shadow_image": None,
        "author": None,
        "authors": [],
    }
    if car.spec is not None:
        update["revision"] = flavor_revision(car.spec)
    return car.model_copy(update=update)


def runtime_refusal(spec: FlavorSpec, settings: Settings, where: str) -> str | None:
    """Why a Flavor spec names a runtime the settings' catalog does not have, if it does;
    `where` names the spec in the message."""
    primary = spec.model.runtime or settings.default_runtime
    wanted = [primary]
    if spec.shadow is not None:
        wanted.append(spec.shadow.model.runtime or primary)
    for runtime in wanted:
        if runtime is None or runtime not in settings.runtimes:
            known = ", ".join(sorted(settings.runtimes)) or "none"
            return (
                f"{where}: runtime {runtime or '(none)'} is not in the settings' runtime "
                f"catalog ({known}): name one of those in its model.runtime, or add the "
                "runtime to the operator's settings first"
            )
    return None


def catalog_refusal(spec: TrainSpec, settings: Settings) -> str | None:
    """Why a car names a runtime the settings' catalog does not have, if one does."""
    for car in spec.cars:
        if car.spec is not None:
            why = runtime_refusal(car.spec, settings, f"car {car.flavor}")
            if why is not None:
                return why
    return None
