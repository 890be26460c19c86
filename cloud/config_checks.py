"""What the cloud needs beyond a well-formed cloud.toml, checked before anything starts.

``load_cloud_config`` checks the file alone and opens nothing, so that it also
works on a workstation without the host's secrets.  A config can then pass and
still name a tokens file that is not there: ``cloud run`` used to migrate the
database and start the scheduler before it tripped over it, and a missing
checkpoint key or SMTP password file would only show up in the log at the first
run of its job, hours later.  Here every file the config names is opened and
read by the same code that will read it in the service (the tokens file, the
secrets, the TLS files, the checkpoint key), the database URL is parsed and the
database reached, and for ``run`` the API's port is tried, so that
``check-config`` and ``run`` stop at once with one line per mistake: which
setting, which file, why.

Only what the parts being started will use is checked (``cloud ingest`` has no
API, so its tokens file does not matter to it).
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from coldgate.cloud.config import CloudConfig, DatabaseConfig
from coldgate.configfile import ConfigError

__all__ = ["CloudChecks", "Parts", "check_cloud_config"]

#: Seconds a check waits for the database to answer: long enough for a slow network, short enough that
#: an operator running ``check-config`` is not left wondering.
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Parts:
    """Which parts of the cloud will run, so that only what they need is checked."""

    ingest: bool = True
    api: bool = True
    scheduler: bool = True
    #: Try to listen on ``[api]`` host:port; off for ``check-config``, which may run beside the service.
    listen: bool = False
    #: Reach the database (and open the files); off for a check of the file alone.
    connect: bool = True


@dataclass
class CloudChecks:
    """The outcome: each problem found (a ``ConfigError`` naming the key), and what was checked."""

    problems: list[ConfigError] = field(default_factory=list)
    #: The keys whose files were read and found good, in the order checked.
    files: list[str] = field(default_factory=list)
    database_reached: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return f"uid {os.getuid()}"


def _read(key: str, path: str) -> bytes:
    """The file's bytes, or a ConfigError saying precisely why not (the usual mistakes by name)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(key, f"{path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(key, f"{path} is a folder, not a file") from None
    except PermissionError:
        raise ConfigError(key, f"{path} cannot be read by {_user()} (permission denied)") from None
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}") from None


def _secret(key: str, path: str) -> None:
    """A secret as the service reads it: the first line, which must not be empty."""
    from coldgate.mqtt_secrets import read_secret

    _read(key, path)
    read_secret(path, key)


def _folder_for(key: str, path: Path, why: str) -> None:
    """The folder a file the service creates goes into: there, a folder, and writable."""
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(key, f"the folder {folder} of {path} does not exist ({why})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(key, f"the folder {folder} of {path} is not writable by {_user()} ({why})")


def _check_database(db: DatabaseConfig, report: CloudChecks, connect: bool) -> None:
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db.url)
        url.port  # noqa: B018 - parsed lazily: "host:abc" fails here, not in make_url
    except (ArgumentError, ValueError) as exc:
        raise ConfigError("database.url", f"does not parse as a database URL: {exc}") from None
    if not connect:
        return
    if db.password_file is not None:
        _secret("database.password_file", db.password_file)
        report.files.append("database.password_file")
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return
        path = Path(url.database)
        if path.exists():
            if not path.is_file():
                raise ConfigError("database.url", f"{path} is not a file")
            if not os.access(path, os.R_OK | os.W_OK):
                raise ConfigError("database.url", f"{path} is not readable and writable by {_user()}")
        # SQLite writes its -wal and -shm files beside the database, so the folder is needed even when
        # the file exists.
        _folder_for("database.url", path, "SQLite keeps the database and its -wal and -shm files there")
        return
    _reach(db, report)


def _one_line(exc: BaseException) -> str:
    """A driver's error on one line (psycopg adds hints on lines of their own)."""
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def _reach(db: DatabaseConfig, report: CloudChecks) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    from coldgate.cloud.db.engine import database_url

    url = database_url(db)
    engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        shown = url.render_as_string(hide_password=True)
        raise ConfigError(
            "database.url", f"cannot connect to {shown}: {_one_line(exc.orig or exc)}"
        ) from None
    finally:
        engine.dispose()
    report.database_reached = True


def _check_secret(key: str, path: str, report: CloudChecks) -> None:
    _secret(key, path)
    report.files.append(key)


def _check_mqtt_tls(config: CloudConfig, report: CloudChecks) -> None:
    """Each TLS file readable (every one missing is reported), then loaded together as the workers and
    the publisher load them: the CA, and the client certificate with its key."""
    from coldgate.mqtt_secrets import tls_context

    mqtt = config.mqtt
    named = [name for name in ("ca_file", "cert_file", "key_file") if getattr(mqtt, name) is not None]
    missing = []
    for name in named:
        try:
            _read(f"mqtt.{name}", getattr(mqtt, name))
        except ConfigError as exc:
            missing.append(exc)
    if missing:
        report.problems.extend(missing)
        return
    tls_context(mqtt, "mqtt")
    report.files.extend(f"mqtt.{name}" for name in named)


def _check_tokens(path: str, report: CloudChecks) -> None:
    from coldgate.cloud.api.auth import load_tokens

    _read("api.tokens_file", path)
    try:
        load_tokens(path)
    except ConfigError as exc:  # placed in the tokens file (its line); the key says which setting
        raise ConfigError("api.tokens_file", str(exc)) from None
    report.files.append("api.tokens_file")


def _check_listen(host: str, port: int) -> None:
    """The API's address is free: uvicorn would otherwise fail after migrations and the scheduler."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError("api.host", f"{host} does not resolve: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            busy = f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another process on it?)"
            raise ConfigError("api.port", busy) from None


def _check_checkpoints(path: Path, report: CloudChecks) -> None:
    """The checkpoint file the audit job appends to: parsed if there, else its folder ready for it."""
    from coldgate.cloud.audit.checkpoint import read_checkpoints

    if path.exists():
        _read("audit.checkpoint_file", str(path))
        if not os.access(path, os.W_OK):
            raise ConfigError("audit.checkpoint_file", f"{path} cannot be appended to by {_user()}")
        try:
            for _ in read_checkpoints(path):
                pass
        except ValueError as exc:
            raise ConfigError("audit.checkpoint_file", str(exc)) from None
    else:  # made at the first checkpoint
        _folder_for("audit.checkpoint_file", path, "the first checkpoint creates the file there")
    report.files.append("audit.checkpoint_file")


def _check_checkpoint_key(path: str, report: CloudChecks) -> None:
    from coldgate.cloud.audit.checkpoint import load_private_key

    _read("audit.checkpoint_key_file", path)
    try:
        load_private_key(Path(path))
    except (ValueError, TypeError) as exc:
        make = "openssl genpkey -algorithm ed25519"
        not_key = f"{path} is not an Ed25519 private key in PEM ({make}): {_one_line(exc)}"
        raise ConfigError("audit.checkpoint_key_file", not_key) from None
    report.files.append("audit.checkpoint_key_file")


def _check_link_secret(path: str, report: CloudChecks) -> None:
    from coldgate.cloud.alerts.notify_links import MIN_SECRET_BYTES

    secret = _read("notify.link_secret_file", path).strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            "notify.link_secret_file",
            f"{path} holds {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed "
            "(head -c 48 /dev/urandom | base64 > the file)",
        )
    report.files.append("notify.link_secret_file")


def _check_smtp_password(path: str, report: CloudChecks) -> None:
    data = _read("notify.smtp_password_file", path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("notify.smtp_password_file", f"{path} is not UTF-8 text") from None
    if not text.strip():
        raise ConfigError("notify.smtp_password_file", f"{path} is empty")
    report.files.append("notify.smtp_password_file")


def check_cloud_config(config: CloudConfig, parts: Parts | None = None) -> CloudChecks:
    """Every problem the parts in ``parts`` would meet at start or at their first run, each a ConfigError
    naming its key; one check failing does not hide the others, so an operator fixes them in one go."""
    parts = parts or Parts()
    report = CloudChecks()
    checks: list[Callable[[], None]] = [partial(_check_database, config.database, report, parts.connect)]
    if parts.connect:
        mqtt, notify = config.mqtt, config.notify
        if parts.ingest or parts.scheduler:  # the workers, and the down-link publisher beside the scheduler
            if mqtt.password_file is not None:
                checks.append(partial(_check_secret, "mqtt.password_file", mqtt.password_file, report))
            if mqtt.address.tls:
                checks.append(partial(_check_mqtt_tls, config, report))
        if parts.api and config.api.tokens_file is not None:
            checks.append(partial(_check_tokens, config.api.tokens_file, report))
        # An unset token_file with enabled = true is refused by load_cloud_config already.
        if parts.ingest and config.influx.enabled and config.influx.token_file is not None:
            checks.append(partial(_check_secret, "influx.token_file", config.influx.token_file, report))
        audit = config.audit
        if parts.scheduler and audit.checkpoint_file is not None:
            checks.append(partial(_check_checkpoints, Path(audit.checkpoint_file), report))
        if parts.scheduler and audit.checkpoint_key_file is not None:
            checks.append(partial(_check_checkpoint_key, audit.checkpoint_key_file, report))
        if (parts.scheduler or parts.api) and notify.link_secret_file is not None:  # links made and checked
            checks.append(partial(_check_link_secret, notify.link_secret_file, report))
        if parts.scheduler and notify.smtp_password_file is not None:
            checks.append(partial(_check_smtp_password, notify.smtp_password_file, report))
    if parts.api and parts.listen:
        checks.append(partial(_check_listen, config.api.host, config.api.port))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            report.problems.append(exc)
    return report
