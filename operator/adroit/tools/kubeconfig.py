"""The user's kubeconfig, read the way kubectl reads it: files, context, credentials.

`kubectl adroit` acts as the person running it, so it reads their kubeconfig
(`--kubeconfig`, else every file of $KUBECONFIG merged, else ~/.kube/config)
and their current context (or `--context`). It supports what kubeconfigs of
kind, kubeadm and the cloud providers hold: a CA, client certificates, tokens
(inline or in a file), basic auth, and exec credential plugins; `--as` and
`--as-group` impersonate as kubectl's flags do.

It does not use the Kubernetes client library: importing it takes most of a
second, and `kubectl adroit status` should answer in less than one.
"""

import base64
import json
import os
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class KubeconfigError(Exception):
    """A kubeconfig that cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class Connection:
    """Where the API server is and how to talk to it as the user."""

    server: str
    context: str
    namespace: str | None  # the context's namespace, if it names one
    ssl: ssl.SSLContext | None
    headers: tuple[tuple[str, str], ...] = field(default=())


def _files(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _merged(paths: list[Path]) -> dict[str, Any]:
    """kubectl's merge: the first file that names an entry (or the current context) wins.
    Relative paths inside a file are taken from that file's folder."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}}
    for path in paths:
        if not path.exists():
            continue
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise KubeconfigError(f"{path}: cannot be read: {error}") from None
        for kind, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in data.get(kind) or []:
                body = dict(entry.get(key) or {})
                body["__dir__"] = path.parent
                merged[kind].setdefault(entry.get("name"), body)
        if not merged.get("current-context"):
            merged["current-context"] = data.get("current-context")
    return merged


def _data(entry: dict[str, Any], key: str) -> bytes | None:
    """A PEM from `key-data` (base64) or from the file `key`."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return Path(entry["__dir__"], entry[key]).read_bytes()
    return None


def _exec_credential(spec: dict[str, Any], server: str) -> dict[str, Any]:
    """Run an exec credential plugin (aws, gke-gcloud-auth-plugin, kubelogin...)."""
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[item["name"]] = item["value"]
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {
            "apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1"),
            "kind": "ExecCredential",
            "spec": {"interactive": False, "cluster": {"server": server}},
        }
    )
    command = [spec["command"], *(spec.get("args") or [])]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise KubeconfigError(f"credential plugin {command[0]} failed: {error}") from None
    if done.returncode != 0:
        raise KubeconfigError(f"credential plugin {command[0]} failed: {done.stderr.strip()}")
    return dict(json.loads(done.stdout).get("status") or {})


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    impersonate: str | None = None,
    impersonate_groups: tuple[str, ...] = (),
) -> Connection:
    """The connection the named (or current) context describes."""
    config = _merged(_files(kubeconfig))
    name = context or config.get("current-context")
    if not name:
        raise KubeconfigError("no context: set current-context in the kubeconfig or pass --context")
    ctx = config["contexts"].get(name)
    if ctx is None:
        known = ", ".join(sorted(n for n in config["contexts"] if n)) or "none"
        raise KubeconfigError(f"context {name!r} is not in the kubeconfig (contexts: {known})")
    cluster = config["clusters"].get(ctx.get("cluster"))
    user = config["users"].get(ctx.get("user"), {"__dir__": Path(".")})
    if cluster is None or not cluster.get("server"):
        raise KubeconfigError(f"context {name!r} names no cluster with a server")
    server = str(cluster["server"]).rstrip("/")
    headers: list[tuple[str, str]] = []
    tls: ssl.SSLContext | None = None
    if server.startswith("https://"):
        tls = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        else:
            ca = _data(cluster, "certificate-authority")
            if ca is not None:
                tls.load_verify_locations(cadata=ca.decode())
    cert, key = _data(user, "client-certificate"), _data(user, "client-key")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (user["__dir__"] / user["tokenFile"]).read_text().strip()
    if user.get("exec"):
        status = _exec_credential(user["exec"], server)
        token = status.get("token") or token
        if status.get("clientCertificateData"):
            cert = status["clientCertificateData"].encode()
            key = status["clientKeyData"].encode()
    if cert is not None and key is not None and tls is not None:
        _load_cert(tls, cert, key)
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    elif user.get("username"):
        basic = base64.b64encode(f"{user['username']}:{user.get('password', '')}".encode())
        headers.append(("Authorization", f"Basic {basic.decode()}"))
    if impersonate:
        headers.append(("Impersonate-User", impersonate))
        headers += [("Impersonate-Group", g) for g in impersonate_groups]
    return Connection(server, name, ctx.get("namespace"), tls, tuple(headers))


def _load_cert(tls: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """ssl loads a client certificate from files only: write them where only we can read."""
    with tempfile.TemporaryDirectory(prefix="kubectl-adroit-") as folder:
        cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        tls.load_cert_chain(cert_path, key_path)
