"""The `adroit` command: run the operator, write the CRDs, check a settings file."""

import argparse
import os
import sys
from pathlib import Path

from adroit.api.crd import render_crds
from adroit.api.settings import SettingsError


def _run(args: argparse.Namespace) -> int:
    import kopf

    import adroit.handlers  # noqa: F401  (registers the handlers)
    from adroit.handlers.serving import parse_address
    from adroit.handlers.startup import load_settings

    try:
        settings = load_settings(args.settings)
        metrics = parse_address(args.metrics_bind_address)
        health = parse_address(args.health_probe_bind_address)
    except (SettingsError, OSError, ValueError, kopf.PermanentError) as error:
        print(f"adroit: cannot start: {error}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, log_prefix=True)
    kopf.run(
        standalone=True,
        namespaces=[settings.namespaces.control],
        memo=kopf.Memo(
            settings=settings,
            settings_path=args.settings or os.environ.get("ADROIT_SETTINGS"),
            metrics_address=metrics,
            health_address=health,
            webhook_cert_dir=Path(args.webhook_cert_dir) if args.webhook_cert_dir else None,
        ),
    )
    return 0


def _crds(args: argparse.Namespace) -> int:
    out = Path(args.out)
    rendered = render_crds()
    if args.check:
        stale = [
            n
            for n, text in rendered.items()
            if not (out / n).exists() or (out / n).read_text() != text
        ]
        if stale:
            print(f"{out}/ is stale ({', '.join(stale)}): run `make crds`", file=sys.stderr)
            return 1
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


def _check_settings(args: argparse.Namespace) -> int:
    from adroit.handlers.startup import load_settings

    try:
        load_settings(args.file)
    except (SettingsError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.file}: valid")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adroit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--settings", help="settings file (default: $ADROIT_SETTINGS)")
    run.add_argument("--verbose", action="store_true", help="log every event")
    run.add_argument(
        "--metrics-bind-address",
        default=":8080",
        help="where /metrics listens (default :8080; 0 turns it off)",
    )
    run.add_argument(
        "--health-probe-bind-address",
        default=":8081",
        help="where /healthz and /readyz listen (default :8081; 0 turns them off)",
    )
    run.add_argument(
        "--webhook-cert-dir",
        help="where the webhook server writes its certificate and key for the TLS stack "
        "(in a container: a writable emptyDir; default: a temporary directory)",
    )
    run.set_defaults(func=_run)

    crds = commands.add_parser("crds", help="write the CRDs generated from the models")
    crds.add_argument("--out", default="crds", help="directory (default: crds)")
    crds.add_argument("--check", action="store_true", help="fail if the directory is stale")
    crds.set_defaults(func=_crds)

    check = commands.add_parser("check-settings", help="validate a settings file")
    check.add_argument("file")
    check.set_defaults(func=_check_settings)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
