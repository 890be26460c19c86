"""The gateways' CA: what a certificate, the CRL and the index say (the broker tests come with the CLI)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

pytest.importorskip("cryptography", reason="the gateways' CA needs the [cloud] extra")

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coldgate.cloud.identity.broker_certs import (
    CA_CERT,
    CA_KEY,
    CLIENT_DAYS,
    CRL,
    INDEX,
    CAError,
    ensure_ca,
    issue_certificate,
    read_index,
    revoke_certificates,
    serial_hex,
    write_gateway_files,
)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


# --- the CA ------------------------------------------------------------------------------------------


def crl_of(folder: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl((folder / CRL).read_bytes())


def ca_of(folder: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())


def test_the_ca_is_made_once_with_its_key_private(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert ensure_ca(folder, NOW) is True
    before = (folder / CA_KEY).read_bytes()
    assert ensure_ca(folder, NOW + datetime.timedelta(days=1)) is False
    assert (folder / CA_KEY).read_bytes() == before, "an existing CA is kept, never replaced"
    modes = {name: (folder / name).stat().st_mode & 0o777 for name in (CA_KEY, INDEX, CA_CERT, CRL)}
    assert modes == {CA_KEY: 0o600, INDEX: 0o600, CA_CERT: 0o644, CRL: 0o644}
    ca = ca_of(folder)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca.verify_directly_issued_by(ca)
    assert ca.not_valid_after_utc - NOW > datetime.timedelta(days=19 * 365)
    crl = crl_of(folder)
    assert crl.is_signature_valid(ca.public_key()) and len(crl) == 0
    # An expired CRL makes OpenSSL refuse every client, and Mosquitto only reads a new one when told.
    assert crl.next_update_utc == ca.not_valid_after_utc


def test_a_half_made_ca_folder_is_refused_not_completed(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    ensure_ca(folder, NOW)
    (folder / CA_KEY).unlink()
    with pytest.raises(CAError, match=r"but not all of ca\.crt, ca\.key"):
        ensure_ca(folder, NOW)
    with pytest.raises(CAError, match="cannot load the CA"):
        issue_certificate(folder, "gw01", NOW)


def test_a_certificate_names_the_gateway_for_client_authentication_only(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    ensure_ca(folder, NOW)
    issued = issue_certificate(folder, "gw01", NOW)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    cert.verify_directly_issued_by(ca_of(folder))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw01"
    assert cert.serial_number == issued.serial
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert cert.not_valid_before_utc <= NOW < cert.not_valid_after_utc
    assert (cert.not_valid_after_utc - NOW).days == CLIENT_DAYS - 1
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    assert key.public_key() == cert.public_key()
    _, entries = read_index(folder)
    assert [(e.serial, e.gateway, e.revoked_at) for e in entries] == [
        (serial_hex(issued.serial), "gw01", None)
    ]
    cert_file, key_file, ca_file = write_gateway_files(issued, tmp_path)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (
        cert_file.read_bytes() == issued.cert_pem and ca_file.read_bytes() == (folder / CA_CERT).read_bytes()
    )
    with pytest.raises(ValueError, match="not a gateway id"):
        issue_certificate(folder, "gw/01", NOW)


def test_revoking_puts_the_serial_on_the_signed_crl_and_in_the_index(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    ensure_ca(folder, NOW)
    gw01 = issue_certificate(folder, "gw01", NOW)
    gw02 = issue_certificate(folder, "gw02", NOW)
    later = NOW + datetime.timedelta(hours=1)
    assert revoke_certificates(folder, "gw01", later) == [gw01.serial]
    crl = crl_of(folder)
    assert crl.is_signature_valid(ca_of(folder).public_key())
    assert crl.get_revoked_certificate_by_serial_number(gw01.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(gw02.serial) is None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    number, entries = read_index(folder)
    assert number == 2
    assert {e.gateway: e.revoked_at for e in entries} == {"gw01": later.isoformat(), "gw02": None}
    unchanged = (folder / CRL).read_bytes()
    assert revoke_certificates(folder, "gw01", later) == [], "nothing left to revoke"
    assert revoke_certificates(folder, "gw09", later) == []
    assert (folder / CRL).read_bytes() == unchanged


def test_re_enrolling_issues_a_new_serial_and_revokes_the_old_one(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    ensure_ca(folder, NOW)
    first = issue_certificate(folder, "gw01", NOW)
    second = issue_certificate(folder, "gw01", NOW + datetime.timedelta(days=1))
    assert second.serial != first.serial and second.revoked == (first.serial,)
    crl = crl_of(folder)
    assert crl.get_revoked_certificate_by_serial_number(first.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(second.serial) is None
    index = json.loads((folder / INDEX).read_text())
    assert [(e["serial"], e["revoked_at"] is None) for e in index["certificates"]] == [
        (serial_hex(first.serial), False),
        (serial_hex(second.serial), True),
    ]
