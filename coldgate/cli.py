"""The ``coldgate`` command.

Each subcommand group lives in the package it drives (``gateway.cli``,
``cloud.cli``, ``simulator.cli``, ``coldgate.demo``), so a Pi that installs only
the gateway extra never imports cloud code.  Groups are loaded lazily: a group
whose extra is not installed still shows in ``--help`` and explains what to
install when used.
"""

from __future__ import annotations

import importlib

import click

from coldgate import __version__

# group name -> (module, attribute, one-line help, extra that provides it)
GROUPS: dict[str, tuple[str, str, str, str]] = {
    "gateway": ("gateway.cli", "gateway", "Run and inspect the edge gateway (on the Pi).", "gateway"),
    "cloud": ("cloud.cli", "cloud", "Run the cloud ingest, API and migrations.", "cloud"),
    "sim": ("simulator.cli", "sim", "Simulate a site: Modbus loggers, LLRP reader, scanner.", "gateway"),
    "demo": (
        "coldgate.demo",
        "demo",
        "Run a whole simulated site end to end on one machine.",
        "gateway,cloud",
    ),
}


class LazyGroup(click.Group):
    """Loads each subcommand group on first use, so start-up stays fast on a Pi."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return None
        module_name, attr, short_help, extra = GROUPS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or str(exc)

            @click.command(name=cmd_name, help=short_help, short_help=short_help)
            def unavailable() -> None:
                raise click.ClickException(
                    f"'{cmd_name}' needs the [{extra}] extra (missing module {missing!r}): "
                    f"pip install 'coldgate[{extra}]'"
                )

            return unavailable
        command = getattr(module, attr)
        command.short_help = short_help
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="coldgate")
def cli() -> None:
    """Coldgate: cold-chain and RFID traceability from the dock door to the recall report."""


def main() -> None:
    cli()
