"""What an operator meets first when starting the cloud (issue 19): ``check-config`` checks everything
``run`` will need, ``run`` checks it before it migrates or starts anything, each mistake is one line, and
the scheduler's runs no longer fill the log."""

from __future__ import annotations

import datetime
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apscheduler", reason="the cloud needs the [cloud] extra")

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

import coldgate.cloud.scheduler
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.config_checks import Parts, check_cloud_config
from coldgate.cloud.scheduler import CloudScheduler
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "deploy" / "examples"
TOKEN = "t" * 32


def cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldgate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def cloud_toml(
    tmp_path: Path, extra: str = "", *, database: str | None = None, port: int | None = None
) -> Path:
    """A cloud.toml on SQLite in ``tmp_path`` (the API on a free port), with ``extra`` tables after."""
    url = database or f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    return write(
        tmp_path / "cloud.toml",
        f'[database]\nurl = "{url}"\n\n[api]\nport = {port or free_port()}\n{extra}',
    )


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr's lines, which must all be one-line errors: no traceback, nothing else."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("Error: ") for line in lines), result.stderr
    return lines


# ------------------------------------------------------------------------------------------ check-config


def test_a_missing_tokens_file_fails_check_config_in_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "api-tokens"
    config = cloud_toml(tmp_path, f'tokens_file = "{tokens}"\n')
    result = cli("cloud", "check-config", config)
    assert result.returncode == 1
    assert errors(result) == [f"Error: {config}: api.tokens_file: {tokens} does not exist"]
    assert result.stdout == ""


def test_a_tokens_file_that_does_not_parse_names_its_line(tmp_path: Path) -> None:
    tokens = write(tmp_path / "api-tokens", f"ops:{TOKEN}\nno colon here\n")
    config = cloud_toml(tmp_path, f'tokens_file = "{tokens}"\n')
    result = cli("cloud", "check-config", config)
    assert result.returncode == 1
    assert errors(result) == [
        f'Error: {config}: api.tokens_file: {tokens}: line 2: expected "name:token", found no ":"'
    ]


def test_every_file_the_config_names_is_checked_and_every_mistake_reported(tmp_path: Path) -> None:
    mqtt_password = write(tmp_path / "mqtt-password", "\n")
    not_a_key = write(tmp_path / "checkpoint.pem", "not a key\n")
    short_secret = write(tmp_path / "link-secret", "short\n")
    smtp_password = tmp_path / "secrets" / "smtp-password"
    checkpoints = tmp_path / "worm" / "coldgate.checkpoints"
    influx_token = tmp_path / "influx-token"
    nowhere = tmp_path / "no-such-folder"
    config = cloud_toml(
        tmp_path,
        f'\n[mqtt]\nusername = "cloud"\npassword_file = "{mqtt_password}"\n'
        f'\n[influx]\nenabled = true\nurl = "http://127.0.0.1:8086"\norg = "o"\nbucket = "b"\n'
        f'token_file = "{influx_token}"\n'
        f'\n[audit]\ncheckpoint_file = "{checkpoints}"\ncheckpoint_key_file = "{not_a_key}"\n'
        f'\n[notify]\nlink_secret_file = "{short_secret}"\nsmtp_host = "127.0.0.1"\nsmtp_login = "qa"\n'
        f'smtp_password_file = "{smtp_password}"\n',
        database=f"sqlite:///{nowhere / 'cloud.sqlite3'}",
    )
    result = cli("cloud", "check-config", config)
    assert result.returncode == 1
    lines = errors(result)
    expected = [
        f"database.url: the folder {nowhere} of {nowhere / 'cloud.sqlite3'} does not exist",
        f"mqtt.password_file: {mqtt_password} is empty",
        f"influx.token_file: {influx_token} does not exist",
        f"audit.checkpoint_file: the folder {checkpoints.parent} of {checkpoints} does not exist",
        f"audit.checkpoint_key_file: {not_a_key} is not an Ed25519 private key in PEM",
        f"notify.link_secret_file: {short_secret} holds 5 bytes; at least 32 are needed",
        f"notify.smtp_password_file: {smtp_password} does not exist",
    ]
    assert len(lines) == len(expected), result.stderr
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"Error: {config}: {start}"), (line, start)


def test_a_config_whose_files_are_all_good_passes_and_says_what_was_read(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tokens = write(tmp_path / "api-tokens", f"# machines\nops:{TOKEN}\n")
    checkpoint_key = write(tmp_path / "checkpoint.pem", key)
    link_secret = write(tmp_path / "link-secret", "x" * 48 + "\n")
    config = cloud_toml(
        tmp_path,
        f'tokens_file = "{tokens}"\n'
        f'\n[audit]\ncheckpoint_file = "{tmp_path / "checkpoints"}"\n'
        f'checkpoint_key_file = "{checkpoint_key}"\n'
        f'\n[notify]\nlink_secret_file = "{link_secret}"\n',
    )
    result = cli("cloud", "check-config", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{config}: ok: database sqlite; files read: api.tokens_file, audit.checkpoint_file, "
        "audit.checkpoint_key_file, notify.link_secret_file\n"
    )
    assert not (tmp_path / "cloud.sqlite3").exists(), "a check creates nothing"


def test_a_checkpoint_file_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    checkpoints = write(
        tmp_path / "checkpoints", '{"seq": 1, "hash": "ab", "at": "2026-01-01T00:00:00Z"}\nrubbish\n'
    )
    report = check_cloud_config(
        _config(tmp_path, f'[audit]\ncheckpoint_file = "{checkpoints}"\n'), Parts(listen=False)
    )
    assert [str(p) for p in report.problems] == [
        f"audit.checkpoint_file: {checkpoints}:2: not a checkpoint line "
        "(Expecting value: line 1 column 1 (char 0))"
    ]


def _config(tmp_path: Path, text: str) -> CloudConfig:
    from coldgate.cloud.config import load_cloud_config

    return load_cloud_config(cloud_toml(tmp_path, text))


def test_tls_files_are_loaded_as_the_workers_load_them(tmp_path: Path) -> None:
    from coldgate.cloud.identity.broker_certs import ensure_ca, issue_certificate, write_gateway_files

    now = datetime.datetime.now(datetime.UTC)
    ensure_ca(tmp_path / "ca", now)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    cert, key, ca = write_gateway_files(issue_certificate(tmp_path / "ca", "cloud", now), tmp_path / "one")
    _, other_key, _ = write_gateway_files(issue_certificate(tmp_path / "ca", "other", now), tmp_path / "two")
    mqtts = '[mqtt]\nbroker = "mqtts://127.0.0.1:8883"\n'
    good = _config(tmp_path, f'{mqtts}ca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n')
    report = check_cloud_config(good)
    assert report.ok, report.problems
    assert report.files == ["mqtt.ca_file", "mqtt.cert_file", "mqtt.key_file"]

    mismatched = _config(
        tmp_path, f'{mqtts}ca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{other_key}"\n'
    )
    [problem] = check_cloud_config(mismatched).problems
    assert str(problem).startswith(f"mqtt.cert_file: cannot load {cert} with {other_key}: ")

    garbage = write(tmp_path / "garbage.pem", "not a certificate\n")
    missing = tmp_path / "missing.key"
    both = _config(tmp_path, f'{mqtts}ca_file = "{garbage}"\ncert_file = "{cert}"\nkey_file = "{missing}"\n')
    assert [str(p) for p in check_cloud_config(both).problems] == [f"mqtt.key_file: {missing} does not exist"]
    bad_ca = _config(tmp_path, f'{mqtts}ca_file = "{garbage}"\n')
    [problem] = check_cloud_config(bad_ca).problems
    assert str(problem).startswith(f"mqtt.ca_file: cannot load {garbage}: ")


def test_only_what_the_parts_started_use_is_checked(tmp_path: Path) -> None:
    config = _config(tmp_path, f'tokens_file = "{tmp_path / "none"}"\n')
    assert [p.key for p in check_cloud_config(config).problems] == ["api.tokens_file"]
    assert check_cloud_config(config, Parts(api=False)).ok, "an ingest worker has no API to give tokens"


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = cloud_toml(tmp_path, database=f"postgresql+psycopg://coldgate@127.0.0.1:{port}/coldgate")
    result = cli("cloud", "check-config", config)
    assert result.returncode == 1
    [line] = errors(result)
    url = f"postgresql+psycopg://coldgate@127.0.0.1:{port}/coldgate"
    assert line.startswith(f"Error: {config}: database.url: cannot connect to {url}: ")
    assert "Connection refused" in line


def test_a_reachable_database_is_said_so(tmp_path: Path, pg_database: Any) -> None:
    config = cloud_toml(tmp_path, database=pg_database.url)
    result = cli("cloud", "check-config", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"{config}: ok: database postgresql+psycopg (reached); files read: none named"
    )


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("cloud*.toml")), ids=lambda p: p.name)
def test_the_examples_pass_offline_and_name_their_missing_files_online(example: Path) -> None:
    """The shipped examples name /etc/coldgate files this machine does not have: ``--offline`` checks the
    file alone (as on a workstation), and the full check names each missing file."""
    offline = cli("cloud", "check-config", "--offline", example)
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.startswith(f"{example}: ok: database ")
    online = cli("cloud", "check-config", example)
    assert online.returncode == 1
    assert all("does not exist" in line for line in errors(online))


# ------------------------------------------------------------------------------------------ run, ingest


def test_run_with_a_missing_tokens_file_stops_before_migrating(tmp_path: Path) -> None:
    tokens = tmp_path / "api-tokens"
    config = cloud_toml(tmp_path, f'tokens_file = "{tokens}"\n')
    result = cli("cloud", "run", config)
    assert result.returncode == 1
    assert errors(result) == [f"Error: {config}: api.tokens_file: {tokens} does not exist"]
    assert not (tmp_path / "cloud.sqlite3").exists(), "nothing was migrated"
    assert "scheduler started" not in result.stdout + result.stderr


def test_run_with_the_api_port_taken_stops_before_migrating(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = cloud_toml(tmp_path, port=port)
        result = cli("cloud", "run", config)
    assert result.returncode == 1
    [line] = errors(result)
    assert line.startswith(
        f"Error: {config}: api.port: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert not (tmp_path / "cloud.sqlite3").exists(), "nothing was migrated"
    # check-config runs beside a running service: it leaves the port alone.
    assert cli("cloud", "check-config", config).returncode == 0


def test_an_ingest_worker_checks_its_influx_token_before_migrating(tmp_path: Path) -> None:
    token = tmp_path / "influx-token"
    config = cloud_toml(
        tmp_path,
        f'[influx]\nenabled = true\nurl = "http://127.0.0.1:8086"\norg = "o"\nbucket = "b"\n'
        f'token_file = "{token}"\n',
    )
    result = cli("cloud", "ingest", config)
    assert result.returncode == 1
    assert errors(result) == [f"Error: {config}: influx.token_file: {token} does not exist"]
    assert not (tmp_path / "cloud.sqlite3").exists()


def test_an_ingest_workers_metrics_address_is_checked_before_anything(tmp_path: Path) -> None:
    config = cloud_toml(tmp_path)
    result = cli("cloud", "ingest", config, "--metrics-listen", "9880")
    assert result.returncode == 2
    assert "Invalid value for --metrics-listen: '9880': expected host:port" in result.stderr, result.stderr
    assert not (tmp_path / "cloud.sqlite3").exists()


def test_migrate_checks_the_database_password_file(tmp_path: Path) -> None:
    password = tmp_path / "db-password"
    config = cloud_toml(tmp_path, database="postgresql+psycopg://coldgate@127.0.0.1:1/coldgate")
    config.write_text(config.read_text().replace("[api]", f'password_file = "{password}"\n\n[api]'))
    result = cli("cloud", "migrate", config)
    assert result.returncode == 1
    assert errors(result) == [f"Error: {config}: database.password_file: {password} does not exist"]


# ------------------------------------------------------------------------------------------ logging


@pytest.fixture
def apscheduler() -> Iterator[logging.Logger]:
    """APScheduler's logger, its level put back after the test (with ``setLevel``, which also clears the
    cached levels of its children)."""
    logger = logging.getLogger("apscheduler")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_scheduler_runs_are_not_logged_at_info(
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    apscheduler: logging.Logger,
) -> None:
    apscheduler.setLevel(logging.NOTSET)  # as a fresh process has it
    ran = threading.Semaphore(0)

    def counted(*args: Any, **kwargs: Any) -> list[object]:
        ran.release()
        return []

    monkeypatch.setattr(coldgate.cloud.scheduler, "check_downlink", counted)
    scheduler = CloudScheduler(engine, CloudConfig(), watchdog_interval_s=0.2)
    with caplog.at_level(logging.INFO):
        scheduler.start()
        try:
            for _ in range(3):
                assert ran.acquire(timeout=10), "the down-link watchdog did not run three times"
            logging.getLogger("apscheduler.executors.default").warning("a run was missed")
        finally:
            scheduler.shutdown()
    from_apscheduler = [r for r in caplog.records if r.name.startswith("apscheduler")]
    assert [(r.levelno, r.getMessage()) for r in from_apscheduler] == [(logging.WARNING, "a run was missed")]
    assert any(
        r.name == "coldgate.cloud.scheduler" and "scheduler started" in r.getMessage() for r in caplog.records
    )


def test_a_level_set_on_purpose_is_kept(apscheduler: logging.Logger) -> None:
    apscheduler.setLevel(logging.DEBUG)
    coldgate.cloud.scheduler.quiet_apscheduler()
    assert apscheduler.level == logging.DEBUG


@pytest.mark.timeout(90)
def test_cloud_run_logs_no_line_per_scheduler_run(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    config = cloud_toml(tmp_path)
    config.write_text(config.read_text() + f'\n[mqtt]\nbroker = "{mosquitto.url}"\nclient_id = "op-quiet"\n'
                      'shared_group = "op-quiet"\nworkers = 1\n')  # fmt: skip
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coldgate", "cloud", "run", str(config)],
            stdout=stdout,
            stderr=stderr,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 60
        while "cloud running" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
        time.sleep(3)  # the QA cases and notify jobs run every second
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    logged = err.read_text()
    assert proc.returncode == 0, logged
    assert "INFO coldgate.cloud.scheduler: scheduler started" in logged
    assert "apscheduler" not in logged, logged
