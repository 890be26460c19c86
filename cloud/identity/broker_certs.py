"""A small certificate authority for gateways that log in with a certificate (``enroll --cert``).

Why certificates: a password login is a secret in two places (the Pi and the
broker's password file) that anyone holding it can use from anywhere.  With a
certificate the broker keeps only the CA's certificate, and with
``use_identity_as_username true`` Mosquitto takes the login from the
certificate itself: the subject's CN is the username, so the CN is the
gateway id and the shipped ACL (``%u``) pins the gateway to its own topics.
Nobody can speak as a gateway without that gateway's private key.

Why a CA of its own, used for nothing else: the certificate listener trusts
*every* certificate its ``cafile`` signed.  Were the CA that signed the
broker's own certificate (or a public one) used there, everything it ever
signed would be a gateway login named by its CN.  This CA signs gateway client
certificates only (clientAuth, not a CA, CN = a checked gateway id).

Revocation is a CRL signed by the CA (``crl.pem``, the listener's ``crlfile``),
rewritten from ``index.json`` (every serial issued, to which gateway, and when
revoked) on every change.  Its ``nextUpdate`` is the CA's own expiry, on
purpose: OpenSSL refuses every client once the CRL it holds is past its
``nextUpdate``, and Mosquitto holds the one it read at start (or at a reload),
so a CRL that "expires" would lock every gateway out some day without anyone
having changed anything.

The gateway's key is made here, with its certificate, and handed to whoever
installs the Pi with them (as the password is); a CSR from the Pi would keep the
key on the Pi from the start and is a later step.  Every file is replaced whole
(a temporary file beside it, then a rename) so the broker never reads half of
one; private keys are 0600.  The folder, ``ca.crt`` and ``crl.pem`` stay
world-readable because Mosquitto reads them as its own user, at a reload too:
a CRL it cannot read then is only logged, and revoked certificates get in
again.  A lock file keeps two enrolments from issuing from the same index at once.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coldgate.contract.ids import is_id

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "CRL",
    "INDEX",
    "CAError",
    "IndexEntry",
    "IssuedCertificate",
    "certificate_config_snippet",
    "ensure_ca",
    "issue_certificate",
    "read_index",
    "revoke_certificates",
    "serial_hex",
    "write_gateway_files",
]

CA_CERT: Final = "ca.crt"
CA_KEY: Final = "ca.key"
CRL: Final = "crl.pem"
INDEX: Final = "index.json"
LOCK: Final = ".lock"

#: The CA outlives every Pi it enrols; renewing it means re-enrolling every gateway.
CA_DAYS: Final = 20 * 365
#: A few years: a Pi is re-enrolled when it is replaced, rarely otherwise.
CLIENT_DAYS: Final = 3 * 365
#: Certificates take effect a little before "now" so a Pi whose clock is a few minutes behind can log in.
BACKDATE: Final = datetime.timedelta(minutes=5)
CA_NAME: Final = "Coldgate gateway CA"

_PUBLIC, _PRIVATE = 0o644, 0o600


class CAError(Exception):
    """The CA folder is not usable as it is (half made, unreadable, another layout)."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One certificate the CA issued, as ``index.json`` keeps it (times in ISO 8601, UTC)."""

    serial: str  # hexadecimal, as ``openssl x509 -serial`` prints it
    gateway: str
    issued_at: str
    not_after: str
    revoked_at: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A gateway's new certificate and key (PEM), the CA certificate, and what re-enrolling revoked."""

    gateway: str
    serial: int
    not_after: datetime.datetime
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    revoked: tuple[int, ...]


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / LOCK).open("a") as lock:
        os.chmod(lock.name, _PRIVATE)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def serial_hex(serial: int) -> str:
    """A serial as ``openssl x509 -serial`` and the index write it: upper-case hex, whole bytes."""
    digits = f"{serial:X}"
    return digits.rjust(len(digits) + len(digits) % 2, "0")


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def _second(moment: datetime.datetime) -> datetime.datetime:
    """X.509 times have whole seconds; keep what is written and what is recorded the same."""
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def read_index(folder: Path) -> tuple[int, list[IndexEntry]]:
    """The last CRL number and every certificate issued, oldest first."""
    path = folder / INDEX
    try:
        raw = json.loads(path.read_text())
        return int(raw["crl_number"]), [IndexEntry(**entry) for entry in raw["certificates"]]
    except FileNotFoundError:
        raise CAError(f"{path}: no such file (is {folder} a Coldgate gateway CA folder?)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CAError(f"{path}: not a Coldgate CA index: {exc}") from None


def _write_index(folder: Path, crl_number: int, entries: list[IndexEntry]) -> None:
    text = json.dumps({"crl_number": crl_number, "certificates": [asdict(e) for e in entries]}, indent=2)
    _write_atomic(folder / INDEX, (text + "\n").encode(), _PRIVATE)


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CAError(f"{folder}: cannot load the CA: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CAError(f"{folder}: {CA_KEY} is not the key of {CA_CERT}")
    return cert, key


def _write_crl(
    folder: Path,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    number: int,
    entries: list[IndexEntry],
    now: datetime.datetime,
) -> None:
    cert, key = ca
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(cert.subject)
        .last_update(_second(now))
        .next_update(cert.not_valid_after_utc)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    for entry in entries:
        if entry.revoked_at is not None:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(entry.serial, 16))
                .revocation_date(datetime.datetime.fromisoformat(entry.revoked_at))
                .build()
            )
    crl = builder.sign(key, hashes.SHA256())
    _write_atomic(folder / CRL, crl.public_bytes(serialization.Encoding.PEM), _PUBLIC)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs only; a gateway signs its TLS handshakes only."""
    flags = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    return x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **flags)


def ensure_ca(folder: Path, now: datetime.datetime) -> bool:
    """Make the CA in ``folder`` (key, self-signed certificate, empty index and CRL) unless it is there.

    True when it was made.  A folder with only part of a CA is refused rather
    than completed: a CA certificate without its key (or the reverse) is
    somebody's mistake to look at, not something to paper over with a new key.
    """
    folder.mkdir(mode=0o755, exist_ok=True)
    with _locked(folder):
        present = [name for name in (CA_CERT, CA_KEY, INDEX) if (folder / name).exists()]
        if present and len(present) < 3:
            raise CAError(f"{folder}: has {', '.join(present)} but not all of {CA_CERT}, {CA_KEY}, {INDEX}")
        if present:
            if not (folder / CRL).exists():  # Mosquitto refuses to start without it: make it again
                number, entries = read_index(folder)
                _write_crl(folder, _load_ca(folder), number, entries, now)
            return False
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        start = _second(now) - BACKDATE
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_atomic(folder / CA_KEY, key_pem, _PRIVATE)
        _write_atomic(folder / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC)
        _write_index(folder, 1, [])
        _write_crl(folder, (cert, key), 1, [], now)
        return True


def _revoke(
    entries: list[IndexEntry], gateway: str, now: datetime.datetime
) -> tuple[list[IndexEntry], list[int]]:
    when = _iso(_second(now))
    revoked = [int(e.serial, 16) for e in entries if e.gateway == gateway and e.revoked_at is None]
    updated = [
        IndexEntry(e.serial, e.gateway, e.issued_at, e.not_after, when)
        if e.gateway == gateway and e.revoked_at is None
        else e
        for e in entries
    ]
    return updated, revoked


def issue_certificate(
    folder: Path, gateway: str, now: datetime.datetime, *, days: int = CLIENT_DAYS
) -> IssuedCertificate:
    """A new certificate and key for ``gateway`` (CN = its id); any it had before are revoked.

    Re-enrolling is how a lost or replaced Pi gets new credentials, so the old
    certificate must stop working in the same step, as an old password does.
    """
    if not is_id(gateway):
        raise ValueError(f"{gateway!r} is not a gateway id")
    with _locked(folder):
        ca_cert, ca_key = ca = _load_ca(folder)
        number, entries = read_index(folder)
        entries, revoked = _revoke(entries, gateway, now)
        key = ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        start = _second(now) - BACKDATE
        end = min(start + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gateway)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        entries.append(IndexEntry(serial_hex(serial), gateway, _iso(_second(now)), _iso(end)))
        number += bool(revoked)
        _write_index(folder, number, entries)  # first: a CRL is always re-made from the index
        if revoked:
            _write_crl(folder, ca, number, entries, now)
        return IssuedCertificate(
            gateway=gateway,
            serial=serial,
            not_after=end,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
            revoked=tuple(revoked),
        )


def revoke_certificates(folder: Path, gateway: str, now: datetime.datetime) -> list[int]:
    """Revoke every certificate of ``gateway`` not yet revoked and rewrite the CRL; their serials."""
    with _locked(folder):
        ca = _load_ca(folder)
        number, entries = read_index(folder)
        entries, revoked = _revoke(entries, gateway, now)
        if revoked:
            _write_index(folder, number + 1, entries)
            _write_crl(folder, ca, number + 1, entries, now)
        return revoked


def write_gateway_files(issued: IssuedCertificate, out_dir: Path) -> tuple[Path, Path, Path]:
    """``GATEWAY.crt``, ``GATEWAY.key`` (0600) and ``gateway-ca.crt`` in ``out_dir``, for the Pi."""
    cert_file, key_file = out_dir / f"{issued.gateway}.crt", out_dir / f"{issued.gateway}.key"
    ca_file = out_dir / "gateway-ca.crt"
    _write_atomic(key_file, issued.key_pem, _PRIVATE)
    _write_atomic(cert_file, issued.cert_pem, _PUBLIC)
    _write_atomic(ca_file, issued.ca_pem, _PUBLIC)
    return cert_file, key_file, ca_file


def certificate_config_snippet(gateway: str, site: str, broker: str) -> str:
    """What to put in a gateway's ``gateway.toml`` to log in with its certificate (paths as on the Pi).

    No ``username``: the broker takes it from the certificate's CN, and the
    gateway checks a configured username against its id, which an absent one
    always passes.
    """
    return (
        "[gateway]\n"
        f'id = "{gateway}"\n'
        f'site = "{site}"\n'
        "\n"
        "[uplink]\n"
        f'broker = "{broker}"  # the certificate listener\n'
        f"# no username: the broker takes it from the certificate's CN ({gateway})\n"
        f'cert_file = "/etc/coldgate/tls/{gateway}.crt"\n'
        f'key_file = "/etc/coldgate/secrets/{gateway}.key"\n'
        "# the CA of the broker's own certificate, if it is not a public one:\n"
        '# ca_file = "/etc/coldgate/tls/ca.pem"\n'
    )
