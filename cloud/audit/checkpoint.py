"""Checkpoints of the audit trail's head, outside the database: what catches a rewritten chain.

The hash chain shows any entry changed, removed, inserted or reordered, but
someone who can write the database could rewrite every entry from the
changed one on, each hash recomputed, and the chain would hold again.  So
the head (seq and hash) is written on a schedule to an append-only file
elsewhere (another disk, a WORM share), one JSON line each; with a key
configured each line is signed with Ed25519 (``cryptography``), so the file
cannot be rewritten to match either without the key.

``check`` holds the database to every checkpoint: the entry at each
checkpointed seq must still exist and have that hash (the chain up to it is
``verify``'s job), and each line's signature must be the key's.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, select

from coldgate.cloud.audit.chain import Break, iso_utc
from coldgate.cloud.audit.log import head
from coldgate.cloud.db.models import AuditEntry

__all__ = ["Checkpoint", "check", "load_private_key", "read_checkpoints", "write_checkpoint"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    signature: str | None = None

    def signed_bytes(self) -> bytes:
        return f"{self.seq}:{self.hash}:{self.at}".encode()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM at ``path`` (``openssl genpkey -algorithm ed25519``)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def write_checkpoint(
    conn: Connection, path: Path, now: datetime.datetime, key: Ed25519PrivateKey | None = None
) -> Checkpoint | None:
    """Append the current head to ``path`` (fsynced); None when the trail is empty or the head is
    already the last line's."""
    seq, digest = head(conn)
    if seq == 0:
        return None
    points = list(read_checkpoints(path))
    last = points[-1] if points else None
    if last is not None and last.seq == seq and last.hash == digest:
        return None
    point = Checkpoint(seq, digest, iso_utc(now))
    if key is not None:
        point = Checkpoint(seq, digest, point.at, base64.b64encode(key.sign(point.signed_bytes())).decode())
    line = json.dumps({"seq": point.seq, "hash": point.hash, "at": point.at, "sig": point.signature}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return point


def read_checkpoints(path: Path) -> Iterator[Checkpoint]:
    if not path.exists():
        return
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            yield Checkpoint(int(doc["seq"]), str(doc["hash"]), str(doc["at"]), doc.get("sig"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a checkpoint line ({exc})") from exc


def check(conn: Connection, path: Path, public_key: Ed25519PublicKey | None = None) -> Break | None:
    """The first checkpoint the database (or the key) does not agree with; None when all do."""
    for point in read_checkpoints(path):
        if public_key is not None:
            if point.signature is None:
                return Break(point.seq, f"checkpoint of {point.at} is not signed")
            try:
                public_key.verify(base64.b64decode(point.signature), point.signed_bytes())
            except (InvalidSignature, ValueError):
                return Break(point.seq, f"checkpoint of {point.at} is not signed by the checkpoint key")
        stored = conn.execute(select(AuditEntry.hash).where(AuditEntry.seq == point.seq)).scalar()
        if stored is None:
            return Break(point.seq, f"entry {point.seq}, checkpointed at {point.at}, is gone")
        if stored != point.hash:
            return Break(point.seq, f"entry {point.seq} is not the one checkpointed at {point.at}: rewritten")
    return None
