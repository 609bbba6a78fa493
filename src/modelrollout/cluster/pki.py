"""The local cluster's certificates and keys, made with ``cryptography`` (no openssl/cfssl needed).

One CA signs everything: the API server's serving certificate, the controller manager's
serving and client certificates, the admin client certificate (group ``system:masters``) and,
on demand, node client certificates (``system:node:<name>`` in ``system:nodes``, what the Node
authorizer expects). Kubernetes reads the user name from CN and groups from O.
ServiceAccount tokens are signed by a separate key pair. Keys are ECDSA P-256: fast to make.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
"""How long every certificate is valid: a test cluster lives minutes, but clocks may be off."""


@dataclass(frozen=True)
class Pair:
    """Paths of one certificate and its private key."""

    cert: Path
    key: Path


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def build_ca(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    """A self-signed CA certificate that may sign leaf certificates only."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
) -> x509.Certificate:
    """A leaf certificate signed by the CA, for TLS serving and/or client authentication."""
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (keys; certificates share the helper)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class Authority:
    """The cluster CA on disk: ``ca.crt``/``ca.key`` in ``pki_dir``, created on first use."""

    def __init__(self, pki_dir: Path, cluster_name: str) -> None:
        self.dir = pki_dir
        self.ca = Pair(pki_dir / "ca.crt", pki_dir / "ca.key")
        if not self.ca.cert.exists():
            pki_dir.mkdir(parents=True, exist_ok=True)
            key = new_key()
            _write_private(self.ca.key, key_pem(key))
            cert = build_ca(key, f"modelrollout-{cluster_name}-ca")
            _write_private(self.ca.cert, cert.public_bytes(serialization.Encoding.PEM))
        loaded = serialization.load_pem_private_key(self.ca.key.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self._key = loaded
        self._cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())

    def issue(
        self,
        stem: str,
        *,
        common_name: str,
        organizations: tuple[str, ...] = (),
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
        server: bool = False,
        client: bool = False,
    ) -> Pair:
        """``<stem>.crt``/``<stem>.key`` signed by the CA; kept when they already exist."""
        pair = Pair(self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        if pair.cert.exists() and pair.key.exists():
            return pair
        key = new_key()
        cert = build_leaf(
            self._key,
            self._cert,
            key,
            common_name=common_name,
            organizations=organizations,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            server=server,
            client=client,
        )
        _write_private(pair.key, key_pem(key))
        _write_private(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def signing_key_pair(self, stem: str) -> Pair:
        """A bare key pair (``<stem>.pub``/``<stem>.key``) for signing ServiceAccount tokens."""
        pair = Pair(self.dir / f"{stem}.pub", self.dir / f"{stem}.key")
        if pair.cert.exists() and pair.key.exists():
            return pair
        key = new_key()
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_private(pair.key, key_pem(key))
        _write_private(pair.cert, public)
        return pair
