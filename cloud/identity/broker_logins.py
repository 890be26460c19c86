"""A gateway's broker login: its password-file line in Mosquitto's own format, and its config.

Enrolling a gateway means giving it a login whose username is its gateway id
(the shipped ACL pins topics to ``%u``) and a fresh random password, and telling
the person installing the Pi what to put in ``gateway.toml``.  Mosquitto's
password file holds ``username:$7$iterations$salt$hash`` (PBKDF2-HMAC-SHA512,
base64, as ``mosquitto_passwd`` writes it since 2.0); it is written here by hand
because no library on the package index writes that format, and calling
``mosquitto_passwd`` would tie the cloud to having Mosquitto installed beside it.
A test has the real broker accept what this writes.  Pure: no file is touched.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Final

__all__ = ["gateway_config_snippet", "mosquitto_hash", "new_password", "with_login", "without_login"]

#: What ``mosquitto_passwd`` 2.0 uses: PBKDF2-HMAC-SHA512, 101 rounds, a 12-byte salt, a 64-byte key.
ITERATIONS: Final = 101
SALT_BYTES: Final = 12


def new_password() -> str:
    """32 URL-safe characters (192 random bits): typed by nobody, pasted into a file once."""
    return secrets.token_urlsafe(24)


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The ``$7$...`` hash Mosquitto 2.0 checks a password against."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    encode = base64.b64encode
    return f"$7${iterations}${encode(salt).decode()}${encode(key).decode()}"


def without_login(passwd: str, username: str) -> tuple[str, bool]:
    """The password file without ``username``'s line, and whether there was one."""
    lines = [line for line in passwd.splitlines() if line.strip()]
    kept = [line for line in lines if line.split(":", 1)[0] != username]
    return ("\n".join(kept) + "\n" if kept else ""), len(kept) != len(lines)


def with_login(passwd: str, username: str, hashed: str) -> tuple[str, bool]:
    """The password file with ``username``'s line set to ``hashed``, and whether it replaced one."""
    others, replaced = without_login(passwd, username)
    return f"{others}{username}:{hashed}\n", replaced


def gateway_config_snippet(gateway: str, site: str, broker: str, password_file: str) -> str:
    """What to put in the enrolled gateway's ``gateway.toml`` (the password goes in ``password_file``)."""
    return (
        "[gateway]\n"
        f'id = "{gateway}"\n'
        f'site = "{site}"\n'
        "\n"
        "[uplink]\n"
        f'broker = "{broker}"\n'
        f'username = "{gateway}"  # the broker grants a gateway its topics by this username\n'
        f'password_file = "{password_file}"\n'
    )
