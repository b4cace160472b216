"""`kubectl adroit`: the tracks at a glance, approvals and aborts, where a change is.

kubectl runs this as the plugin `kubectl-adroit` (found on PATH). It acts as
the kubeconfig's user, in its current context (or `--context`), on the control
namespace (`-n`, else the context's namespace, else `adroit`).

Exit codes: 0 done; 1 no such train or flavor; 2 wrong usage; 3 refused by
the API server (RBAC or the admission webhook: the message says why and what
to do); 4 the cluster or the kubeconfig cannot be used.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adroit.tools import render
from adroit.tools.actions import ACTIONS, annotation_patch, refusal_hint
from adroit.tools.client import MERGE, ApiError, Client, resource_path
from adroit.tools.kubeconfig import KubeconfigError, connect

# The models and the plan take a good part of a second to import: a command that reads
# the cluster sends its requests first and imports them while the API server answers.
if TYPE_CHECKING:
    from adroit.api.settings import Settings
    from adroit.tools.look import Observed

OK, NOT_FOUND, USAGE, REFUSED, UNREACHABLE = 0, 1, 2, 3, 4
PLURALS = ("flavors", "trains")
READS = ("status", "get", "describe", "why")
SETTINGS_CONFIGMAP = "adroit-settings"  # deploy/operator.yaml
Fetched = dict[str, tuple[list[dict[str, Any]], str]]  # plural: (items, resourceVersion)


class UsageError(Exception):
    """A command line that cannot work (a settings file that cannot be read, say)."""


class Session:
    """One command's connection, namespace, settings and output."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        connection = connect(
            getattr(args, "kubeconfig", None),
            getattr(args, "context", None),
            getattr(args, "as_user", None),
            tuple(getattr(args, "as_group", None) or ()),
        )
        self.client = Client(connection)
        self.namespace: str = getattr(args, "namespace", None) or connection.namespace or "adroit"
        self.output: str = getattr(args, "output", None) or "text"
        self.compact = False
        self.paint = render.Paint(sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
        self._settings: Settings | None = None
        self._settings_read = False
        self._settings_file = getattr(args, "settings", None) or os.environ.get("ADROIT_SETTINGS")
        self._pool = ThreadPoolExecutor(3)
        self._lists: dict[str, Future[tuple[list[dict[str, Any]], str]]] = {}
        self._configmap: Future[dict[str, Any] | None] | None = None
        if args.command in READS:
            self._send()

    def _send(self) -> None:
        """The lists (and the settings' ConfigMap) asked for at once, side by side."""
        self._lists = {p: self._pool.submit(self.list, p) for p in PLURALS}
        if not self._settings_file:
            self._configmap = self._pool.submit(self._read_configmap)

    def _read_configmap(self) -> dict[str, Any] | None:
        try:
            return self.client.get(resource_path(self.namespace, "configmaps", SETTINGS_CONFIGMAP))
        except ApiError:  # none, or this user may not read it
            return None

    def settings(self) -> Settings | None:
        """The operator's settings (for the window): --settings, $ADROIT_SETTINGS, or the
        installed ConfigMap when this user may read it."""
        if not self._settings_read:
            from adroit.api.settings import SettingsError
            from adroit.tools.look import settings_from_configmap, settings_from_file

            try:
                found = settings_from_file(self._settings_file)
            except (SettingsError, OSError) as error:
                raise UsageError(str(error)) from None
            if found is None:
                if self._configmap is None:
                    self._configmap = self._pool.submit(self._read_configmap)
                data = self._configmap.result()
                found = settings_from_configmap(data) if data else None
            self._settings, self._settings_read = found, True
        return self._settings

    def list(self, plural: str) -> tuple[list[dict[str, Any]], str]:
        answer = self.client.get(resource_path(self.namespace, plural), resourceVersion="0")
        return list(answer.get("items") or []), str(answer["metadata"]["resourceVersion"])

    def fetch(self) -> Fetched:
        """Flavors and Trains, as listed (asked for when the command started)."""
        if not self._lists:
            self._send()
        lists, self._lists = self._lists, {}
        return {p: future.result() for p, future in lists.items()}

    def observe(self, fetched: Fetched | None = None, pending_only: bool = False) -> Observed:
        from adroit.tools.look import observe

        self.settings()  # its imports and its parsing while the lists are on their way
        fetched = fetched or self.fetch()
        flavors, trains = fetched["flavors"][0], fetched["trains"][0]
        observed = observe(flavors, trains, datetime.now(UTC), pending_only=pending_only)
        for problem in observed.unreadable:
            print(f"kubectl adroit: skipped {problem}", file=sys.stderr)
        return observed

    def show(self, data: Any, text: Callable[[], str]) -> None:
        if self.output == "text":
            print(text())
        elif self.compact and self.output == "json":  # one document a line, for scripts
            print(json.dumps(data, separators=(",", ":")))
        else:
            print(render.dump(data, self.output))


# --- commands -------------------------------------------------------------


def _status(s: Session) -> int:
    from adroit.plan.tracks import as_data

    s.settings()
    fetched = s.fetch()

    def draw(observed: Observed) -> None:
        tracks = observed.look(s.settings())
        s.show(as_data(tracks), lambda: render.status_text(tracks, s.paint))

    if not s.args.watch:
        draw(s.observe(fetched, pending_only=True))
        return OK
    s.compact = True
    return _watch(s, fetched, draw)


def _watch(s: Session, fetched: Fetched, draw: Callable[[Observed], None]) -> int:
    """Draw again on every change the watches bring (and each half minute, for the ages)."""
    from adroit.tools.look import observe

    items = {p: {i["metadata"]["name"]: i for i in fetched[p][0]} for p in PLURALS}
    versions = {p: fetched[p][1] for p in PLURALS}
    changes: queue.Queue[tuple[str, dict[str, Any]] | BaseException] = queue.Queue()

    def follow(plural: str) -> None:
        version = versions[plural]
        while True:
            try:
                for event in s.client.watch(resource_path(s.namespace, plural), version):
                    obj = event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        changes.put((plural, event))
            except ApiError as error:
                if error.status == 410:  # compacted: start again from a fresh list
                    fresh, version = s.list(plural)
                    for item in fresh:
                        changes.put((plural, {"type": "MODIFIED", "object": item}))
                    continue
                changes.put(error)
                return

    for plural in PLURALS:
        threading.Thread(target=follow, args=(plural,), daemon=True).start()
    clear = "\x1b[H\x1b[2J" if s.paint.enabled else ""
    while True:
        print(clear, end="")
        flavors, trains = items["flavors"].values(), items["trains"].values()
        draw(observe(flavors, trains, datetime.now(UTC), pending_only=True))
        if not clear and s.output == "text":
            print("---")
        sys.stdout.flush()
        try:
            change = changes.get(timeout=30)
        except queue.Empty:
            continue
        while True:  # take everything that came together, then draw once
            if isinstance(change, BaseException):
                raise change
            plural, event = change
            name = event["object"]["metadata"]["name"]
            if event["type"] == "DELETED":
                items[plural].pop(name, None)
            else:
                items[plural][name] = event["object"]
            try:
                change = changes.get(timeout=0.2)
            except queue.Empty:
                break


def _get(s: Session) -> int:
    from adroit.plan.tracks import as_data

    observed = s.observe()
    now = observed.world.now
    if s.args.kind in ("trains", "train", "tr"):
        views = sorted(observed.world.trains, key=lambda t: t.order)
        if s.args.name:
            views = [v for v in views if v.name == s.args.name]
            if not views:
                return _missing(s, "train", s.args.name)
        reading = observed.reading(s.settings())
        lines = [reading.line(v) for v in views]
        s.show(as_data(lines), lambda: render.trains_table(lines, now, s.paint))
        return OK
    flavors = sorted(observed.world.flavors.values(), key=lambda f: f.name)
    if s.args.name:
        flavors = [f for f in flavors if f.name == s.args.name]
        if not flavors:
            return _missing(s, "flavor", s.args.name)
    data = [
        {"name": f.name, "spec": f.spec.to_wire(), "status": f.status.to_wire()} for f in flavors
    ]
    s.show(data, lambda: render.flavors_table(flavors, s.paint))
    return OK


def _describe(s: Session) -> int:
    from adroit.plan.tracks import as_data

    observed = s.observe()
    view = observed.train(s.args.train)
    if view is None:
        return _missing(s, "train", s.args.train)
    line = observed.reading(s.settings()).line(view)
    s.show(as_data(line), lambda: render.describe_text(line, observed.world.now, s.paint))
    return OK


def _why(s: Session) -> int:
    from adroit.plan.tracks import as_data

    observed = s.observe()
    found = observed.why(s.args.flavor, s.settings())
    if found is None:
        return _missing(s, "flavor", s.args.flavor)
    s.show(as_data(found), lambda: render.why_text(found, observed.world.now, s.paint))
    return OK


def _act(s: Session) -> int:
    """Write the annotation a person would: the webhook checks and records it as usual."""
    action, train = s.args.command, s.args.train
    path = resource_path(s.namespace, "trains", train)
    try:
        s.client.request("PATCH", path, body=annotation_patch(action), content_type=MERGE)
    except ApiError as error:
        if error.status == 404:
            return _missing(s, "train", train)
        if error.status == 0:
            raise
        print(f"kubectl adroit {action}: refused: {error.message}", file=sys.stderr)
        hint = refusal_hint(action, error, s.namespace, train)
        if hint:
            print(hint, file=sys.stderr)
        return REFUSED
    print(f"train/{train} annotated {ACTIONS[action]}=true")
    return OK


def _missing(s: Session, kind: str, name: str) -> int:
    print(f"kubectl adroit: {kind} {name} not found in namespace {s.namespace}", file=sys.stderr)
    return NOT_FOUND


def _dashboard(s: Session) -> int:
    from adroit.tools.dashboard import serve

    return serve(s.client.connection, s.namespace, s.settings(), s.args.address, s.args.port)


# --- arguments --------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument("-n", "--namespace", help="control namespace (default: the context's)")
    common.add_argument("--as", dest="as_user", help="impersonate this user, as kubectl --as")
    common.add_argument("--as-group", action="append", help="impersonate this group")
    common.add_argument("--settings", help="the operator's settings file, for the deploy window")
    data = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    data.add_argument("-o", "--output", choices=["text", "json", "yaml"], help="output format")

    parser = argparse.ArgumentParser(
        prog="kubectl adroit",
        description=__doc__,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", parents=[common, data], help="the tracks at a glance")
    status.add_argument("-w", "--watch", action="store_true", help="draw again on every change")
    status.set_defaults(func=_status)
    get = commands.add_parser("get", parents=[common, data], help="list trains or flavors")
    get.add_argument("kind", choices=["trains", "train", "tr", "flavors", "flavor", "fl"])
    get.add_argument("name", nargs="?")
    get.set_defaults(func=_get)
    describe = commands.add_parser(
        "describe", parents=[common, data], help="a train: cars and its history as a timeline"
    )
    describe.add_argument("train")
    describe.set_defaults(func=_describe)
    for action, text in (
        ("approve", "approve a train waiting for approval (adroit.dev/approved=true)"),
        ("abort", "stop a train and revert staging (adroit.dev/abort=true)"),
        ("override-window", "let a train go outside the deploy window"),
    ):
        act = commands.add_parser(action, parents=[common], help=text)
        act.add_argument("train")
        act.set_defaults(func=_act)
    why = commands.add_parser(
        "why", parents=[common, data], help="where a flavor's latest change is, and why"
    )
    why.add_argument("flavor")
    why.set_defaults(func=_why)
    dash = commands.add_parser("dashboard", parents=[common], help="serve the live dashboard")
    dash.add_argument("--port", type=int, default=3100, help="port (default 3100)")
    dash.add_argument("--address", default="127.0.0.1", help="address (default 127.0.0.1)")
    dash.set_defaults(func=_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        session = Session(args)
        return int(args.func(session))
    except (KubeconfigError, OSError) as error:
        print(f"kubectl adroit: {error}", file=sys.stderr)
        return UNREACHABLE
    except UsageError as error:
        print(f"kubectl adroit: {error}", file=sys.stderr)
        return USAGE
    except ApiError as error:
        print(f"kubectl adroit: {error.message}", file=sys.stderr)
        return REFUSED if error.status in (401, 403) else UNREACHABLE
    except KeyboardInterrupt:
        return OK


if __name__ == "__main__":
    sys.exit(main())
