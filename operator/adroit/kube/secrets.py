"""The operator's secrets: the key that signs approvals, the webhook's TLS certificate.

Kept in one Secret in the control namespace, created on first start and read
on every later one, so a restart neither invalidates approvals nor rewrites
the webhook configuration.
"""

import base64
import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api import names


@dataclass(frozen=True)
class OperatorSecrets:
    signing_key: bytes
    tls_cert: bytes  # PEM; self-signed, so it is also the CA bundle
    tls_key: bytes  # PEM
    hosts: tuple[str, ...]


def self_signed(hosts: tuple[str, ...]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adroit-webhook")])
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


async def operator_secrets(
    api: client.ApiClient, namespace: str, name: str, hosts: tuple[str, ...]
) -> OperatorSecrets:
    """Read the Secret, or create it once: a fresh signing key and certificate for `hosts`."""
    core = client.CoreV1Api(api)
    try:
        secret = await core.read_namespaced_secret(name, namespace)
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        stored_hosts = tuple(data.get("hosts", b"").decode().split(","))
        if "signing-key" in data and stored_hosts == hosts:
            return OperatorSecrets(data["signing-key"], data["tls.crt"], data["tls.key"], hosts)
        signing_key = data.get("signing-key") or secrets.token_bytes(32)
    except ApiException as error:
        if error.status != 404:
            raise
        secret, signing_key = None, secrets.token_bytes(32)
    cert, key = self_signed(hosts)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE},
        },
        "data": {
            k: base64.b64encode(v).decode()
            for k, v in {
                "signing-key": signing_key,
                "tls.crt": cert,
                "tls.key": key,
                "hosts": ",".join(hosts).encode(),
            }.items()
        },
    }
    if secret is None:
        await core.create_namespaced_secret(namespace, body)  # type: ignore[arg-type]
    else:
        await core.replace_namespaced_secret(name, namespace, body)  # type: ignore[arg-type]
    return OperatorSecrets(signing_key, cert, key, hosts)
