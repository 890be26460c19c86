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
    "gateway": (
        "coldgate.gateway.cli",
        "gateway",
        "Run and inspect the edge gateway (on the Pi).",
        "gateway",
    ),
    "cloud": ("coldgate.cloud.cli", "cloud", "Run the cloud ingest, API and migrations.", "cloud"),
    "sim": (
        "coldgate.simulator.cli",
        "sim",
        "Simulate a site: Modbus loggers, LLRP reader, scanner.",
        "gateway",
    ),
    "demo": (
        "coldgate.demo",
        "demo",
        "Run a whole simulated site end to end on one machine.",
        "gateway,cloud",
    ),
}


OWN_PACKAGES = {"coldgate"}


def _unavailable(name: str, short_help: str, extra: str, missing: str) -> click.Command:
    """A stand-in that explains which extra to install, whatever arguments it is given."""

    @click.command(
        name=name,
        help=short_help,
        short_help=short_help,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def unavailable(args: tuple[str, ...]) -> None:
        raise click.ClickException(
            f"'{name}' needs the [{extra}] extra (missing module {missing!r}): "
            f"pip install 'coldgate[{extra}]'"
        )

    return unavailable


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
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if not missing or missing in OWN_PACKAGES:
                raise  # a bug in Coldgate itself, not a missing extra: show it as it is
            return _unavailable(cmd_name, short_help, extra, missing)
        command = getattr(module, attr)
        command.short_help = short_help
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="coldgate")
def cli() -> None:
    """Coldgate: cold-chain and RFID traceability from the dock door to the recall report."""


def main() -> None:
    cli()
