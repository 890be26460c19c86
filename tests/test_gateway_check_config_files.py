"""``coldgate gateway check-config`` opens the files the uplink will read (password, TLS CA, client
certificate and key) and reports each mistake on its own line with the key, the file and the reason,
as ``cloud check-config`` does; ``--offline`` checks the file alone (a workstation without the Pi's
secrets)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from coldgate.gateway.cli import gateway
from tests.rig.commands import run_ok

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "deploy" / "examples"
EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA and a client certificate it signed, with its key; another key; the key encrypted."""
    where = tmp_path_factory.mktemp("pki")
    run_ok("openssl", "req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
           "-subj", "/CN=coldgate test CA", cwd=where)  # fmt: skip
    run_ok("openssl", "req", *EC, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=pi-demo-01",
           cwd=where)  # fmt: skip
    run_ok("openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
           "-CAcreateserial", "-out", "client.crt", "-days", "2", cwd=where)  # fmt: skip
    run_ok("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-out", "other.key", cwd=where)  # fmt: skip
    run_ok("openssl", "pkey", "-in", "client.key", "-aes256", "-passout", "pass:secret",
           "-out", "encrypted.key", cwd=where)  # fmt: skip
    return where


@pytest.fixture
def files(tmp_path: Path, pki: Path) -> Iterator[dict[str, Path]]:
    """Good copies of each file the uplink reads, in the test's own folder (a test may spoil them)."""
    made = {"password_file": tmp_path / "mqtt-password"}
    made["password_file"].write_text("s3cret\n")
    for key, name in (("ca_file", "ca.crt"), ("cert_file", "client.crt"), ("key_file", "client.key")):
        made[key] = tmp_path / name
        made[key].write_bytes((pki / name).read_bytes())
    yield made


def config(tmp_path: Path, broker: str = "mqtts://broker.example:8883", **named: Path) -> Path:
    """The minimal example with an ``[uplink]`` naming ``named`` files."""
    lines = ["", "[uplink]", f'broker = "{broker}"', 'username = "pi-demo-01"']
    lines += [f'{key} = "{path}"' for key, path in named.items()]
    path = tmp_path / "gateway.toml"
    path.write_text((EXAMPLES / "gateway-minimal.toml").read_text() + "\n".join(lines) + "\n")
    return path


def check(path: Path, *options: str) -> Result:
    return CliRunner().invoke(gateway, ["check-config", *options, str(path)])


def errors(result: Result) -> list[str]:
    assert result.exit_code == 1, result.output
    return [line for line in result.stderr.splitlines() if line]


def test_good_files_are_read_and_named(tmp_path: Path, files: dict[str, Path]) -> None:
    path = config(tmp_path, **files)
    result = check(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{path}: ok: gateway pi-demo-01 at site demo-site, 1 sensor(s); "
        "files read: uplink.password_file, uplink.ca_file, uplink.cert_file, uplink.key_file\n"
    )


def test_plain_mqtt_reads_the_password_only(tmp_path: Path, files: dict[str, Path]) -> None:
    result = check(config(tmp_path, broker="mqtt://localhost:1883", password_file=files["password_file"]))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("; files read: uplink.password_file\n")


def test_no_files_named_is_said(tmp_path: Path) -> None:
    result = check(config(tmp_path, broker="mqtt://localhost:1883"))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("; files read: none named\n")


def test_every_missing_file_is_its_own_line(tmp_path: Path) -> None:
    gone = {key: tmp_path / "nowhere" / key for key in ("password_file", "ca_file", "cert_file", "key_file")}
    path = config(tmp_path, **gone)
    assert errors(check(path)) == [
        f"Error: {path}: uplink.{key}: {file} does not exist" for key, file in gone.items()
    ]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "holds no password (only blank lines)"),
        (b"\ns3cret\n", "starts with a blank line; the uplink sends the first line as the password"),
        (b"   \ns3cret\n", "starts with a blank line; the uplink sends the first line as the password"),
        (b"\xff\xfe s3cret\n", "is not UTF-8 text"),
    ],
    ids=["empty", "blank", "first-line-empty", "first-line-spaces", "not-utf8"],
)
def test_a_password_file_the_uplink_cannot_use(
    tmp_path: Path, files: dict[str, Path], content: bytes, why: str
) -> None:
    files["password_file"].write_bytes(content)
    path = config(tmp_path, **files)
    assert errors(check(path)) == [f"Error: {path}: uplink.password_file: {files['password_file']} {why}"]


def test_a_folder_is_not_a_password_file(tmp_path: Path) -> None:
    path = config(tmp_path, broker="mqtt://localhost:1883", password_file=tmp_path)
    assert errors(check(path)) == [f"Error: {path}: uplink.password_file: {tmp_path} is a folder, not a file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_key_names_the_user(tmp_path: Path, files: dict[str, Path]) -> None:
    files["key_file"].chmod(0)
    path = config(tmp_path, **files)
    [line] = errors(check(path))
    assert line.startswith(f"Error: {path}: uplink.key_file: {files['key_file']} cannot be read by ")
    assert line.endswith(" (permission denied)")


def test_a_ca_file_without_a_certificate(tmp_path: Path, files: dict[str, Path]) -> None:
    files["ca_file"].write_text("not a certificate\n")
    path = config(tmp_path, **files)
    [line] = errors(check(path))
    assert line.startswith(
        f"Error: {path}: uplink.ca_file: {files['ca_file']} holds no CA certificate ssl loads ("
    )


def test_a_key_given_as_the_certificate(tmp_path: Path, files: dict[str, Path], pki: Path) -> None:
    files["cert_file"].write_bytes((pki / "client.key").read_bytes())
    path = config(tmp_path, **files)
    [line] = errors(check(path))
    assert line.startswith(
        f"Error: {path}: uplink.cert_file: {files['cert_file']} holds no certificate ssl loads ("
    )


def test_the_key_of_another_certificate(tmp_path: Path, files: dict[str, Path], pki: Path) -> None:
    files["key_file"].write_bytes((pki / "other.key").read_bytes())
    path = config(tmp_path, **files)
    assert errors(check(path)) == [
        f"Error: {path}: uplink.key_file: {files['key_file']} is not the private key of the certificate in "
        f"{files['cert_file']}"
    ]


def test_a_key_file_without_a_key(tmp_path: Path, files: dict[str, Path]) -> None:
    files["key_file"].write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    path = config(tmp_path, **files)
    [line] = errors(check(path))
    assert line.startswith(
        f"Error: {path}: uplink.key_file: {files['key_file']} holds no private key ssl loads ("
    )


def test_an_encrypted_key_is_refused_without_asking_for_its_passphrase(
    tmp_path: Path, files: dict[str, Path], pki: Path
) -> None:
    files["key_file"].write_bytes((pki / "encrypted.key").read_bytes())
    path = config(tmp_path, **files)
    assert errors(check(path)) == [
        f"Error: {path}: uplink.key_file: {files['key_file']} is an encrypted private key; the uplink loads "
        "it without a passphrase, so it must be stored unencrypted (readable by the gateway's user only)"
    ]


def test_a_bad_password_and_a_bad_ca_are_both_reported(tmp_path: Path, files: dict[str, Path]) -> None:
    files["password_file"].write_text("")
    files["ca_file"].write_text("")
    path = config(tmp_path, **files)
    assert errors(check(path)) == [
        f"Error: {path}: uplink.password_file: {files['password_file']} is empty",
        f"Error: {path}: uplink.ca_file: {files['ca_file']} is empty",
    ]


def test_offline_opens_none_of_the_files(tmp_path: Path) -> None:
    path = config(tmp_path, password_file=tmp_path / "gone", ca_file=tmp_path / "gone.pem")
    result = check(path, "--offline")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("; the uplink's files not checked (--offline)\n")


def test_the_cold_room_example_names_the_pis_files() -> None:
    """The example names /etc/coldgate files this machine does not have (tests/test_cli.py checks it
    ``--offline``): each is reported, so the check does open them."""
    example = EXAMPLES / "gateway-cold-room.toml"
    if Path("/etc/coldgate").exists():
        pytest.skip("this machine has an /etc/coldgate of its own")
    assert errors(check(example)) == [
        f"Error: {example}: uplink.password_file: /etc/coldgate/secrets/mqtt-password does not exist",
        f"Error: {example}: uplink.ca_file: /etc/coldgate/tls/ca.pem does not exist",
    ]
