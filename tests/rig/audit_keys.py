"""An Ed25519 key file as ``[audit] checkpoint_key_file`` takes it (PKCS#8 PEM), for checkpoint tests."""

from __future__ import annotations

from pathlib import Path


def checkpoint_key_file(folder: Path, name: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = folder / name
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path
