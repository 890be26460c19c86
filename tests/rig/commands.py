"""Running a tool the tests need (openssl, mosquitto_passwd, pip, a venv's python), failing clearly."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_ok(*args: str | Path, cwd: Path | None = None, timeout: float = 60) -> str:
    """The command's standard output; an AssertionError with its output and errors if it failed."""
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout
