"""``coldgate cloud gateways enroll|revoke|list|init-ca``: who may speak as a gateway, in two places.

A gateway needs a broker login (a password in the gateways' Mosquitto password
file, or a client certificate from the gateways' CA) *and* an enrolment in the
cloud's database (``cloud.identity.enrolment``: ingest stores nothing from a
gateway without one).  Both are written by the same command so they cannot
drift apart: the database row is written first, in a transaction that is
committed only once the broker's files are written, so a refused enrolment
(another site) or a broker file that cannot be written leaves both as they
were.  ``--no-broker`` records only the database half, for brokers whose logins
are managed elsewhere.

The password file is rewritten whole (to a temporary file beside it, then
renamed), keeping its mode, so the broker never reads half a file; Mosquitto
reads it, and the CRL, again on SIGHUP (``systemctl reload mosquitto``).  A
reload ends open connections of a removed password login, but not of a revoked
certificate: the CRL is checked only when a connection starts, so ending one
that is open takes a restart (``systemctl restart mosquitto``).

A gateway has one kind of login at a time: enrolling it with a certificate
removes its password login, and enrolling it with a password revokes its
certificates, so the credential the database records is the only one that works.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from coldgate.cloud.audit.log import append
from coldgate.cloud.cli_transaction import cli_actor, load_config, transaction, utc_now
from coldgate.cloud.cli_transaction import config_option as config_option_for
from coldgate.cloud.identity.broker_logins import (
    gateway_config_snippet,
    mosquitto_hash,
    new_password,
    with_login,
    without_login,
)
from coldgate.contract.ids import is_id

if TYPE_CHECKING:
    from sqlalchemy import Connection

DEFAULT_PASSWD = "/etc/mosquitto/coldgate-gateways.passwd"
DEFAULT_CA_DIR = "/etc/mosquitto/coldgate-gateway-ca"
SECRET_ON_PI = "/etc/coldgate/secrets/mqtt-password"
PASSWORD_BROKER = "mqtts://mqtt.example.com:8883"
CERTIFICATE_BROKER = "mqtts://mqtt.example.com:8885"
RELOAD = "systemctl reload mosquitto"


def _write_whole(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, mode)
    os.replace(tmp.name, path)


def _check_id(what: str, value: str) -> None:
    if not is_id(value):
        raise click.BadParameter(f"{value!r} is not an id (1-64 of A-Z a-z 0-9 _ . -)", param_hint=what)


@contextmanager
def _transaction(config_path: Path) -> Iterator[Connection]:
    """One transaction on the cloud's database; the broker files' errors (a CA folder half made, a
    file that cannot be written) roll it back and reach the operator as a plain message."""
    from coldgate.cloud.identity.broker_certs import CAError

    with transaction(load_config(config_path), refused=(CAError, OSError)) as conn:
        yield conn


def _drop_password(passwd_file: Path, gateway: str) -> bool:
    """Remove ``gateway``'s password login if it has one; whether it had."""
    if not passwd_file.exists():
        return False
    remaining, found = without_login(passwd_file.read_text(), gateway)
    if found:
        _write_whole(passwd_file, remaining)
    return found


def _drop_certificates(ca_dir: Path, gateway: str, now: datetime.datetime) -> list[int]:
    """Revoke ``gateway``'s certificates if there is a CA with any; their serials."""
    from coldgate.cloud.identity.broker_certs import INDEX, revoke_certificates

    if not (ca_dir / INDEX).exists():
        return []
    return revoke_certificates(ca_dir, gateway, now)


def _serials(serials: list[int] | tuple[int, ...]) -> str:
    from coldgate.cloud.identity.broker_certs import serial_hex

    return ", ".join(serial_hex(serial) for serial in serials)


config_option = config_option_for("The cloud's TOML file: the enrolment is recorded in its database.")
passwd_option = click.option(
    "--passwd-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PASSWD,
    show_default=True,
    help="The gateways' Mosquitto password file (deploy/mosquitto/coldgate.conf, listener 8883).",
)
ca_dir_option = click.option(
    "--ca-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CA_DIR,
    show_default=True,
    help="The gateways' CA folder (ca.crt, crl.pem for listener 8885; ca.key, index.json).",
)
cert_option = click.option(
    "--cert", is_flag=True, help="A client certificate from the gateways' CA instead of a password."
)
no_broker_option = click.option(
    "--no-broker",
    is_flag=True,
    help="Record in the cloud database only; leave the broker's logins (managed elsewhere) alone.",
)


@click.group("gateways")
def gateways() -> None:
    """Gateways' enrolment: broker login and the cloud's record, made and taken away together."""


@gateways.command("init-ca")
@ca_dir_option
def init_ca(ca_dir: Path) -> None:
    """Make the gateways' CA and its (empty) CRL, which Mosquitto needs before listener 8885 starts."""
    from coldgate.cloud.identity.broker_certs import CA_CERT, CRL, CAError, ensure_ca

    if not ca_dir.parent.is_dir():
        raise click.ClickException(f"{ca_dir.parent}: no such folder")
    try:
        made = ensure_ca(ca_dir, utc_now())
    except (CAError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{'made' if made else 'kept'} the gateways' CA in {ca_dir} ({ca_dir / CA_CERT}, {ca_dir / CRL})"
    )


@gateways.command("enroll")
@click.argument("gateway")
@click.option("--site", required=True, help="The site the gateway belongs to.")
@click.option("--broker", help=f"The broker URL the gateway connects to [default: {PASSWORD_BROKER}, "
              f"with --cert {CERTIFICATE_BROKER}].")  # fmt: skip
@passwd_option
@cert_option
@ca_dir_option
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    help="With --cert: where GATEWAY.crt, GATEWAY.key and gateway-ca.crt are written  [default: here].",
)
@config_option
@no_broker_option
def enroll(
    gateway: str,
    site: str,
    broker: str | None,
    passwd_file: Path,
    cert: bool,
    ca_dir: Path,
    out_dir: Path,
    config_path: Path,
    no_broker: bool,
) -> None:
    """Enrol GATEWAY for a site in the cloud and give it a broker login; print its config.

    The login's username is the gateway id: a new random password (default),
    or with --cert a client certificate whose CN is the gateway id.
    Re-enrolling makes new credentials; the old ones stop working.
    """
    _check_id("GATEWAY", gateway)
    _check_id("--site", site)
    if not no_broker:
        needed = (ca_dir.parent, out_dir) if cert else (passwd_file.parent,)
        for folder in needed:
            if not folder.is_dir():
                raise click.ClickException(f"{folder}: no such folder")
    credential = "certificate" if cert else "password"
    now = utc_now()
    with _transaction(config_path) as conn:
        from coldgate.cloud.identity.enrolment import enrol_gateway

        try:
            before = enrol_gateway(conn, gateway, site, credential, now)
        except ValueError as exc:  # enrolled for another site: refused, nothing written
            raise click.ClickException(str(exc)) from exc
        append(conn, actor=cli_actor(), action="gateway.enrol", entity_type="gateway", entity_id=gateway,
               now=now, before={"state": before} if before else None,
               after={"site": site, "credential": credential, "broker": not no_broker})  # fmt: skip
        if not no_broker:
            if cert:
                lines = _enroll_certificate(gateway, site, broker or CERTIFICATE_BROKER, ca_dir, out_dir, now)
                dropped = _drop_password(passwd_file, gateway)
                if dropped:
                    lines.insert(1, f"its password login was removed from {passwd_file}")
            else:
                lines = _enroll_password(gateway, site, broker or PASSWORD_BROKER, passwd_file)
                revoked = _drop_certificates(ca_dir, gateway, now)
                if revoked:
                    lines.insert(1, f"its certificate(s) {_serials(revoked)} revoked in {ca_dir}")
    was = {None: "", "enrolled": " (it was enrolled: new credentials)", "revoked": " (it had been revoked)"}
    click.echo(f"{gateway} enrolled for site {site} in the cloud database{was[before]}")
    if no_broker:
        click.echo(f"The broker was not touched (--no-broker): give {gateway} a login there,")
        click.echo(f"username = {gateway}{' (the certificate CN)' if cert else ''}.")
        return
    for line in lines:
        click.echo(line)


def _enroll_password(gateway: str, site: str, broker: str, passwd_file: Path) -> list[str]:
    password = new_password()
    current = passwd_file.read_text() if passwd_file.exists() else ""
    updated, replaced = with_login(current, gateway, mosquitto_hash(password))
    _write_whole(passwd_file, updated)
    done = "re-enrolled (new password)" if replaced else "enrolled"
    return [
        f"{done} {gateway}: login written to {passwd_file}",
        f"Make the broker read it: {RELOAD}",
        f"\nOn the gateway, {SECRET_ON_PI} (chmod 600, owner coldgate) holds this password,",
        "shown only now:",
        f"  {password}",
        "\nand /etc/coldgate/gateway.toml starts with:\n",
        gateway_config_snippet(gateway, site, broker, SECRET_ON_PI),
        "No ACL lines to add: coldgate.acl grants every gateway its own topics by username (%u).",
    ]


def _enroll_certificate(
    gateway: str, site: str, broker: str, ca_dir: Path, out_dir: Path, now: datetime.datetime
) -> list[str]:
    from coldgate.cloud.identity.broker_certs import (
        certificate_config_snippet,
        ensure_ca,
        issue_certificate,
        write_gateway_files,
    )

    made = ensure_ca(ca_dir, now)
    issued = issue_certificate(ca_dir, gateway, now)
    cert_file, key_file, ca_file = write_gateway_files(issued, out_dir)
    until = f"{issued.not_after:%Y-%m-%d}"
    lines = [f"certificate {_serials([issued.serial])} for {gateway} (CN={gateway}), valid until {until}"]
    if made:
        lines.append(f"made the gateways' CA in {ca_dir}: restart Mosquitto (listener 8885 reads its ca.crt)")
    if issued.revoked:
        lines.append(f"its earlier certificate(s) {_serials(issued.revoked)} revoked: {RELOAD}")
    return [
        *lines,
        f"wrote {cert_file}, {key_file} (its private key, 0600) and {ca_file} (the CA that signed it)",
        f"\nOn the gateway, put {cert_file.name} at /etc/coldgate/tls/{gateway}.crt and {key_file.name} at",
        f"/etc/coldgate/secrets/{gateway}.key (chmod 600, owner coldgate); delete them here then.",
        "/etc/coldgate/gateway.toml starts with:\n",
        certificate_config_snippet(gateway, site, broker),
        "No password, no ACL lines: the broker (listener 8885) takes the login from the certificate's CN.",
    ]


@gateways.command("revoke")
@click.argument("gateway")
@passwd_option
@cert_option
@ca_dir_option
@config_option
@no_broker_option
def revoke(
    gateway: str, passwd_file: Path, cert: bool, ca_dir: Path, config_path: Path, no_broker: bool
) -> None:
    """Revoke GATEWAY in the cloud database and take its broker login (or --cert certificate) away."""
    from coldgate.cloud.identity.broker_certs import INDEX

    _check_id("GATEWAY", gateway)
    if not no_broker:
        where = ca_dir / INDEX if cert else passwd_file
        if not where.exists():
            raise click.ClickException(f"{where}: no such file")
    now = utc_now()
    with _transaction(config_path) as conn:
        from coldgate.cloud.identity.broker_certs import revoke_certificates
        from coldgate.cloud.identity.enrolment import revoke_gateway

        was_enrolled = revoke_gateway(conn, gateway, now)
        if was_enrolled:
            after = {"revoked": True, "certificates": cert, "broker": not no_broker}
            append(conn, actor=cli_actor(), action="gateway.revoke", entity_type="gateway",
                   entity_id=gateway, now=now, after=after)  # fmt: skip
        found, lines, nothing = False, ["The broker was not touched (--no-broker)."], ""
        if cert and not no_broker:
            serials = revoke_certificates(ca_dir, gateway, now)
            found, nothing = bool(serials), f" has no certificate to revoke in {ca_dir} and"
            lines = [
                f"revoked {gateway}'s certificate(s) {_serials(serials)}: CRL rewritten in {ca_dir}",
                f"Make the broker read it: {RELOAD}. It refuses new connections with them then, but a",
                "connection open now stays open (Mosquitto checks the CRL only when a connection starts):",
                "to end it, systemctl restart mosquitto (the other gateways reconnect by themselves).",
            ]
        elif not no_broker:
            found, nothing = _drop_password(passwd_file, gateway), f" has no login in {passwd_file} and"
            lines = [
                f"revoked {gateway}: login removed from {passwd_file}",
                f"Make the broker read it: {RELOAD} (open connections end then)",
            ]
        if not was_enrolled and not found:
            raise click.ClickException(
                f"{gateway}{nothing} is not enrolled (or already revoked) in the cloud database"
            )
    if was_enrolled:
        click.echo(f"{gateway} revoked in the cloud database: ingest stores nothing more from it")
    else:
        click.echo(f"{gateway} was not enrolled (or already revoked) in the cloud database")
    for line in lines if (found or no_broker) else [f"nothing of {gateway} to take away on the broker"]:
        click.echo(line)


@gateways.command("list")
@config_option
def list_gateways(config_path: Path) -> None:
    """One line per gateway the cloud knows: id, site, credential, enrolled at, revoked at (or -)."""
    from sqlalchemy import select

    from coldgate.cloud.db.models import GatewayEnrolment

    columns = ("gateway", "site", "credential", "enrolled_at", "revoked_at")
    with _transaction(config_path) as conn:
        rows = conn.execute(
            select(*(getattr(GatewayEnrolment, name) for name in columns)).order_by(GatewayEnrolment.gateway)
        ).all()

    def when(moment: datetime.datetime | None) -> str:
        if moment is None:
            return "-"
        aware = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)  # SQLite keeps no zone
        return aware.astimezone(datetime.UTC).isoformat(timespec="seconds")

    click.echo("\t".join(columns))
    for row in rows:
        click.echo(
            f"{row.gateway}\t{row.site}\t{row.credential}\t{when(row.enrolled_at)}\t{when(row.revoked_at)}"
        )
    revoked = sum(1 for row in rows if row.revoked_at is not None)
    click.echo(f"{len(rows)} gateway(s): {len(rows) - revoked} enrolled, {revoked} revoked")
