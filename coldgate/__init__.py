"""Coldgate: edge-to-cloud cold-chain and RFID traceability.

This root package holds only what every process shares: the ``coldgate``
command that assembles the subcommand groups and the TOML config loader.
"""

__version__ = "0.1.0"
