"""``coldgate cloud gateways``: the cloud's record of who may speak, kept with the broker's logins.

The enrolment is written to the cloud database first, in the transaction that
commits only once the broker's files are written: a refused enrolment, or a
broker file that cannot be written, leaves the database, the password file
and the CA as they were.  The database half runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")
pytest.importorskip("cryptography", reason="the gateways' CA needs the [cloud] extra")

from click.testing import CliRunner, Result

from coldgate.cloud.cli import cloud
from coldgate.cloud.identity.broker_certs import CA_CERT, INDEX

ROOT = Path(__file__).resolve().parent.parent


class Site:
    """A cloud config and the broker's files a test enrols into (none exist until written)."""

    def __init__(self, folder: Path, db_url: str) -> None:
        self.config = folder / "cloud.toml"
        self.config.write_text(f'[database]\nurl = "{db_url}"\n')
        self.passwd = folder / "gateways.passwd"
        self.ca_dir = folder / "gateway-ca"
        self.out_dir = folder / "issued"
        self.out_dir.mkdir()

    def run(self, *args: str) -> Result:
        where = ["--config", str(self.config)]
        if args[0] != "list" and "--no-broker" not in args:
            where += ["--passwd-file", str(self.passwd), "--ca-dir", str(self.ca_dir)]
            if args[0] == "enroll" and "--cert" in args:
                where += ["--out-dir", str(self.out_dir)]
        return CliRunner().invoke(cloud, ["gateways", *args, *where])

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.output

    def listed(self) -> dict[str, tuple[str, str, str, str]]:
        """gateway -> (site, credential, enrolled_at, revoked_at) as ``list`` prints them."""
        lines = self.ok("list").splitlines()
        assert lines[0] == "gateway\tsite\tcredential\tenrolled_at\trevoked_at"
        rows = [line.split("\t") for line in lines[1:-1]]
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}

    def logins(self) -> list[str]:
        return [line.split(":")[0] for line in self.passwd.read_text().splitlines()]

    def certificates(self) -> list[tuple[str, bool]]:
        """(gateway, still valid) for every certificate the CA issued."""
        entries = json.loads((self.ca_dir / INDEX).read_text())["certificates"]
        return [(e["gateway"], e["revoked_at"] is None) for e in entries]


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Site:
    return Site(tmp_path, db_url)


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Site:
    return Site(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite3'}")


def recent(when: str) -> bool:
    moment = datetime.datetime.fromisoformat(when)
    return abs(datetime.datetime.now(datetime.UTC) - moment) < datetime.timedelta(minutes=5)


def test_enrolling_records_the_gateway_its_site_and_credential(site: Site) -> None:
    assert site.listed() == {}
    assert "gw01 enrolled for site s1 in the cloud database" in site.ok("enroll", "gw01", "--site", "s1")
    site.ok("enroll", "gw02", "--site", "s2", "--cert")
    listed = site.listed()
    assert {gw: (row[0], row[1], row[3]) for gw, row in listed.items()} == {
        "gw01": ("s1", "password", "-"),
        "gw02": ("s2", "certificate", "-"),
    }
    assert all(recent(row[2]) for row in listed.values())
    assert site.logins() == ["gw01"] and site.certificates() == [("gw02", True)]


def test_revoking_records_when_and_re_enrolling_enrols_again(site: Site) -> None:
    site.ok("enroll", "gw01", "--site", "s1")
    site.ok("enroll", "gw02", "--site", "s1", "--cert")
    assert "gw01 revoked in the cloud database" in site.ok("revoke", "gw01")
    site.ok("revoke", "gw02", "--cert")
    listed = site.listed()
    assert recent(listed["gw01"][3]) and recent(listed["gw02"][3])
    assert site.logins() == [] and site.certificates() == [("gw02", False)]
    again = site.run("revoke", "gw01")
    assert again.exit_code == 1 and "not enrolled (or already revoked)" in again.output
    assert "(it had been revoked)" in site.ok("enroll", "gw01", "--site", "s2")
    assert site.listed()["gw01"][:2] == ("s2", "password") and site.listed()["gw01"][3] == "-"


@pytest.mark.parametrize("cert", [False, True], ids=["password", "certificate"])
def test_enrolling_for_another_site_is_refused_and_changes_nothing(sqlite_site: Site, cert: bool) -> None:
    site = sqlite_site
    site.ok("enroll", "gw01", "--site", "s1", "--no-broker")
    before = site.listed()
    refused = site.run("enroll", "gw01", "--site", "s2", *(["--cert"] if cert else []))
    assert refused.exit_code == 1, refused.output
    assert "gw01 is enrolled for site s1; revoke it first to enrol it for s2" in refused.output
    assert site.listed() == before
    assert not site.passwd.exists() and not site.ca_dir.exists() and not any(site.out_dir.iterdir())


def test_a_refused_enrolment_makes_no_new_password(site: Site) -> None:
    site.ok("enroll", "gw01", "--site", "s1")
    logins = site.passwd.read_text()
    refused = site.run("enroll", "gw01", "--site", "s2")
    assert refused.exit_code == 1 and "enrolled for site s1" in refused.output
    assert site.passwd.read_text() == logins, "no new password for a refused enrolment"
    assert site.listed()["gw01"][:2] == ("s1", "password")


def test_a_broker_file_that_cannot_be_written_leaves_the_database_as_it_was(site: Site) -> None:
    site.ca_dir.mkdir()
    (site.ca_dir / CA_CERT).write_text("a CA certificate someone left without its key\n")
    failed = site.run("enroll", "gw01", "--site", "s1", "--cert")
    assert failed.exit_code == 1 and "but not all of ca.crt, ca.key" in failed.output
    assert site.listed() == {}, "the enrolment was rolled back with the broker's half"


def test_no_broker_records_only_in_the_database(site: Site) -> None:
    printed = site.ok("enroll", "gw01", "--site", "s1", "--no-broker")
    assert "The broker was not touched" in printed and "password" not in printed.split("\n", 1)[1]
    assert site.listed()["gw01"][:2] == ("s1", "password")
    site.ok("enroll", "gw02", "--site", "s1", "--cert", "--no-broker")
    assert site.listed()["gw02"][1] == "certificate"
    site.ok("revoke", "gw01", "--no-broker")
    assert site.listed()["gw01"][3] != "-"
    unknown = site.run("revoke", "gw09", "--no-broker")
    assert unknown.exit_code == 1 and "gw09 is not enrolled" in unknown.output
    assert not site.passwd.exists() and not site.ca_dir.exists()


def test_a_gateway_has_one_kind_of_login_at_a_time(sqlite_site: Site) -> None:
    site = sqlite_site
    site.ok("enroll", "gw01", "--site", "s1")
    site.ok("enroll", "gw02", "--site", "s1")
    switched = site.ok("enroll", "gw01", "--site", "s1", "--cert")
    assert "its password login was removed" in switched
    assert site.logins() == ["gw02"] and site.certificates() == [("gw01", True)]
    back = site.ok("enroll", "gw01", "--site", "s1")
    assert "revoked in" in back and "shown only now" in back
    assert site.logins() == ["gw02", "gw01"] and site.certificates() == [("gw01", False)]
    assert site.listed()["gw01"][1] == "password"


def test_a_revoked_login_in_the_broker_only_is_still_taken_away(sqlite_site: Site) -> None:
    site = sqlite_site
    site.ok("enroll", "gw01", "--site", "s1")
    site.ok("revoke", "gw01", "--no-broker")
    printed = site.ok("revoke", "gw01")
    assert "was not enrolled (or already revoked)" in printed and "login removed" in printed
    assert site.logins() == []


def test_a_certificate_enrolment_prints_where_the_files_went_and_the_config(sqlite_site: Site) -> None:
    site = sqlite_site
    printed = site.ok(
        "enroll", "gw01", "--site", "s1", "--cert", "--broker", "mqtts://broker.example.org:8885"
    )
    assert f"made the gateways' CA in {site.ca_dir}" in printed
    assert sorted(p.name for p in site.out_dir.iterdir()) == ["gateway-ca.crt", "gw01.crt", "gw01.key"]
    assert 'broker = "mqtts://broker.example.org:8885"' in printed
    assert (
        'key_file = "/etc/coldgate/secrets/gw01.key"' in printed
        and "username" not in printed.split("[uplink]")[1].split("#")[0]
    )
    again = site.ok("enroll", "gw01", "--site", "s1", "--cert")
    assert "earlier certificate(s)" in again and "made the gateways' CA" not in again


def test_the_printed_certificate_config_is_one_a_gateway_loads(sqlite_site: Site, tmp_path: Path) -> None:
    from coldgate.gateway.config_load import load_gateway_config

    printed = sqlite_site.ok("enroll", "pi-demo-01", "--site", "demo-site", "--cert")
    snippet = printed[printed.index("[gateway]") : printed.index("No password, no ACL lines")]
    minimal = (ROOT / "deploy" / "examples" / "gateway-minimal.toml").read_text()
    rest = minimal[minimal.index("[[modbus_lines]]") :]
    (tmp_path / "gateway.toml").write_text(snippet + "\n" + rest)
    uplink = load_gateway_config(tmp_path / "gateway.toml").uplink
    assert uplink.username is None and uplink.password_file is None
    assert (uplink.cert_file, uplink.key_file) == (
        "/etc/coldgate/tls/pi-demo-01.crt",
        "/etc/coldgate/secrets/pi-demo-01.key",
    )
    assert uplink.address.port == 8885 and uplink.address.tls


def test_a_cloud_config_that_cannot_be_read_is_said_so_and_nothing_is_written(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    where = ["--passwd-file", str(passwd), "--config", str(tmp_path / "missing.toml")]
    result = CliRunner().invoke(cloud, ["gateways", "enroll", "gw01", "--site", "s1", *where])
    assert result.exit_code == 1 and "missing.toml" in result.output
    assert not passwd.exists()


def test_init_ca_makes_the_ca_once(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    first = CliRunner().invoke(cloud, ["gateways", "init-ca", "--ca-dir", str(folder)])
    assert first.exit_code == 0 and first.output.startswith("made")
    key = (folder / "ca.key").read_bytes()
    second = CliRunner().invoke(cloud, ["gateways", "init-ca", "--ca-dir", str(folder)])
    assert second.exit_code == 0 and second.output.startswith("kept")
    assert (folder / "ca.key").read_bytes() == key


def test_every_enrolment_and_revocation_is_audited(site: Site, db_url: str) -> None:
    from sqlalchemy import create_engine

    from coldgate.cloud.audit.log import entries, verify

    site.ok("enroll", "gw-aud", "--site", "s1")
    site.ok("enroll", "gw-aud", "--site", "s1", "--no-broker")  # re-enrolled
    site.ok("revoke", "gw-aud")
    refused = site.run("enroll", "gw-aud2", "--site", "s1")  # fine
    assert refused.exit_code == 0
    assert site.run("enroll", "gw-aud2", "--site", "s2", "--no-broker").exit_code != 0  # another site
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            trail = [(e.action, e.entity_id, e.actor_name.endswith("(coldgate CLI)")) for e in entries(conn)]
            assert verify(conn)[1] is None
    finally:
        engine.dispose()
    assert trail == [
        ("gateway.enrol", "gw-aud", True),
        ("gateway.enrol", "gw-aud", True),
        ("gateway.revoke", "gw-aud", True),
        ("gateway.enrol", "gw-aud2", True),
    ], "the refused enrolment left no entry"
