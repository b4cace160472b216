"""From the Flavors and Trains the API server lists to the view of the tracks."""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from adroit.api import names
from adroit.api.settings import Settings, SettingsError, parse_settings
from adroit.kube.read import flavor_view, train_view
from adroit.plan.tracks import Reading, Tracks, Whereabouts, look_at_tracks, where_is
from adroit.plan.window import window_state
from adroit.plan.world import FlavorView, TrainView, World

SETTINGS_KEY = "settings.yaml"  # in the ConfigMap adroit-settings (deploy/operator.yaml)


@dataclass(frozen=True)
class Observed:
    """What was listed, read as the plan reads it; `unreadable` names objects that could not."""

    world: World
    annotations: dict[str, dict[str, str]]
    created_by: dict[str, str]
    unreadable: tuple[str, ...] = ()
    settled: int = 0  # Flavors left out: up to date, as their status says

    def look(self, settings: Settings | None) -> Tracks:
        window = None if settings is None else window_state(settings.deploy_window, self.world.now)
        return look_at_tracks(self.world, window, self.reading(settings), settled=self.settled)

    def why(self, flavor: str, settings: Settings | None) -> Whereabouts | None:
        view = self.world.flavors.get(flavor)
        return None if view is None else where_is(view, self.world, self.reading(settings))

    def train(self, name: str) -> TrainView | None:
        return self.world.trains_by_name.get(name)

    def reading(self, settings: Settings | None) -> Reading:
        duties = settings is None or settings.approval.separation_of_duties
        return Reading(self.annotations, self.created_by, duties)


# Objects already read, by (kind, name): (resourceVersion, view); an object is read again
# only once it changed. The dashboard keeps one across changes.
Cache = dict[tuple[str, str], tuple[str, Any]]


def settled(item: dict[str, Any]) -> bool:
    """A Flavor whose status the operator wrote for its current spec and which says nothing
    is pending: the view of the tracks only counts it (reading thousands of them is most
    of what `kubectl adroit status` would spend its time on)."""
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    if "deletionTimestamp" in meta or status.get("observedGeneration") != meta.get("generation"):
        return False
    conditions = status.get("conditions") or []
    pending = next((c for c in conditions if c.get("type") == "PendingChanges"), None)
    return pending is not None and pending.get("status") == "False"


def observe(
    flavors: Iterable[dict[str, Any]],
    trains: Iterable[dict[str, Any]],
    now: datetime,
    cache: Cache | None = None,
    pending_only: bool = False,
) -> Observed:
    """The World of these Flavors and Trains at `now` (no stage is read: each status says
    what runs); with `pending_only`, settled Flavors are counted, not read."""
    unreadable: list[str] = []
    cache = {} if cache is None else cache
    present: set[tuple[str, str]] = set()

    def read(kind: str, item: dict[str, Any], parse: Callable[[dict[str, Any]], Any]) -> Any:
        meta = item.get("metadata", {})
        key, version = (kind, meta.get("name", "")), meta.get("resourceVersion", "")
        present.add(key)
        seen = cache.get(key)
        if seen is not None and seen[0] == version:
            return seen[1]
        try:
            view = parse(item)
        except (ValidationError, KeyError, ValueError) as error:
            unreadable.append(f"{kind} {meta.get('name')}: {error}")
            return None
        cache[key] = (version, view)
        return view

    flavor_views: dict[str, FlavorView] = {}
    left_out = 0
    for item in flavors:
        if pending_only and settled(item):
            left_out += 1
            continue
        view = read("Flavor", item, flavor_view)
        if view is not None:
            flavor_views[view.name] = view
    train_views: list[TrainView] = []
    annotations: dict[str, dict[str, str]] = {}
    created_by: dict[str, str] = {}
    for item in trains:
        train = read("Train", item, lambda i: train_view(i, None))
        if train is None:
            continue
        train_views.append(train)
        notes = dict(item["metadata"].get("annotations") or {})
        annotations[train.name] = notes
        if notes.get(names.CREATED_BY):
            created_by[train.name] = notes[names.CREATED_BY]
    for gone in cache.keys() - present:
        del cache[gone]
    world = World(now=now, flavors=flavor_views, trains=tuple(train_views))
    return Observed(world, annotations, created_by, tuple(unreadable), left_out)


def settings_from_file(path: str | None) -> Settings | None:
    """The operator's settings from `--settings`, else $ADROIT_SETTINGS; None when neither."""
    path = path or os.environ.get("ADROIT_SETTINGS")
    if not path:
        return None
    with open(path) as file:
        return parse_settings(file.read(), path)


def settings_from_configmap(data: dict[str, Any]) -> Settings | None:
    """The settings an installed operator reads (ConfigMap adroit-settings), if they parse."""
    text = (data.get("data") or {}).get(SETTINGS_KEY)
    if not text:
        return None
    try:
        return parse_settings(text, "ConfigMap adroit-settings")
    except SettingsError:
        return None
