"""Stable device names for a Pi's USB serial adapters and scanners: a udev rule per device.

``/dev/ttyUSB0`` and ``/dev/ttyACM0`` are handed out in the order devices appear at boot, so two RS-485
adapters can swap names after a reboot and a poller then talks to the wrong bus.  ``/dev/serial/by-id/``
helps only where the adapter has a serial number of its own: cheap CH340 adapters have none, and some
FTDI clones all carry the same one, so two of them collide there.  A udev rule gives each device a name of
the site's choosing (``/dev/coldgate/rs485-cold-rooms``), matched by what really tells it apart:

- its USB serial number, when it has a usable one (the adapter can move to another port);
- otherwise the USB port it is plugged into (``KERNELS=="1-1.2"``: the same port, the same name; the
  label on the Pi's case says which port is which).

``coldgate gateway udev-rule /dev/ttyUSB0 --name rs485-cold-rooms`` reads the device's facts from sysfs
and prints its rule.  No library reads these few sysfs attributes (pyudev would, through libudev, for
one walk up a directory tree), so it is done here; the rule text is made by a pure function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "RULES_FILE",
    "DeviceFacts",
    "UdevError",
    "device_facts",
    "rule_for",
]

#: Where the rules go on the Pi (``deploy/pi/99-coldgate.rules`` is the annotated example).
RULES_FILE = "/etc/udev/rules.d/99-coldgate.rules"
#: A name under /dev/coldgate/: what a config may say and a shell need not quote.
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Serial numbers that do not tell one adapter from another: none at all, or the one a whole batch
#: of FTDI clones (and some CH34x/CP210x boards) ship with.
SHARED_SERIALS = frozenset({"", "0", "0000", "00000000", "0001", "A50285BI", "1234567890"})


class UdevError(Exception):
    """The device cannot be named: what, and why."""


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What udev can match a tty by: its kernel name, the USB device's vendor and product ids, serial
    number (None: it has none) and port path (``1-1.2``: bus 1, port 1, then port 2 of a hub)."""

    tty: str
    vendor: str
    product: str
    serial: str | None
    port: str
    description: str = ""
    #: The USB interface the tty is on ("01"), when the device has more than one tty (an FT2232's two
    #: ports share serial and USB port, so only this tells them apart); None for a one-port device.
    interface: str | None = None

    @property
    def serial_usable(self) -> bool:
        """A serial of its own that a rule can quote (a '"' or '\\' in it would break the line)."""
        serial = self.serial
        return (
            serial is not None
            and serial.strip() not in SHARED_SERIALS
            and serial.isprintable()
            and not {'"', "\\"} & set(serial)
        )


def device_facts(device: str, sys_root: Path = Path("/sys")) -> DeviceFacts:
    """The facts of ``device`` (``/dev/ttyUSB0``, ``ttyACM1`` or a by-id link) read from sysfs."""
    tty = Path(device).resolve().name if device.startswith("/") else device
    node = sys_root / "class" / "tty" / tty
    if not node.exists():
        raise UdevError(f"{device}: no such serial device ({node} is missing): is it plugged in?")
    try:
        here = (node / "device").resolve(strict=True)
    except OSError:
        raise UdevError(f"{device}: not a USB device (a built-in UART has a fixed name already)") from None
    interface: str | None = None
    for folder in (here, *here.parents):
        if interface is None and (folder / "bInterfaceNumber").is_file():
            interface = _attr(folder, "bInterfaceNumber")
        if (folder / "idVendor").is_file():
            return DeviceFacts(
                tty=tty,
                vendor=_attr(folder, "idVendor") or "",
                product=_attr(folder, "idProduct") or "",
                serial=_attr(folder, "serial"),
                port=folder.name,
                description=" ".join(filter(None, (_attr(folder, "manufacturer"), _attr(folder, "product")))),
                interface=interface if _tty_interfaces(folder) > 1 else None,
            )
        if folder == sys_root:
            break
    raise UdevError(f"{device}: not a USB device (a built-in UART has a fixed name already)")


def _tty_interfaces(usb: Path) -> int:
    """How many of the USB device's interfaces carry a tty (``ttyUSB*`` or a ``tty`` folder)."""
    return sum(
        1
        for interface in usb.glob(f"{usb.name}:*")
        if (interface / "tty").is_dir() or any(interface.glob("ttyUSB*"))
    )


def _attr(folder: Path, name: str) -> str | None:
    try:
        return (folder / name).read_text().strip()
    except OSError:
        return None


def rule_for(facts: DeviceFacts, name: str, by: str = "auto") -> str:
    """The rule naming ``facts``'s device ``/dev/coldgate/<name>``, with a comment saying what it matches.

    ``by``: "serial", "port" or "auto" (the serial number when it is usable, else the port).
    """
    if not NAME.match(name):
        raise UdevError(f"name {name!r}: use 1-64 lower-case letters, digits, '.', '_' or '-'")
    if by not in ("auto", "serial", "port"):
        raise UdevError(f"by {by!r}: choose serial, port or auto")
    if by == "serial" and not facts.serial_usable:
        why = (
            "has no serial number" if facts.serial is None else f"shares serial {facts.serial!r} with others"
        )
        raise UdevError(f"/dev/{facts.tty} {why}: match it by the USB port it is plugged into (--by port)")
    use_serial = by == "serial" or (by == "auto" and facts.serial_usable)
    match = [
        'SUBSYSTEM=="tty"',
        f'ATTRS{{idVendor}}=="{facts.vendor}"',
        f'ATTRS{{idProduct}}=="{facts.product}"',
    ]
    if use_serial:
        match.append(f'ATTRS{{serial}}=="{facts.serial}"')
        what = f"serial number {facts.serial} (it may move to any port)"
    else:
        match.append(f'KERNELS=="{facts.port}"')
        what = f"USB port {facts.port} (keep it in that port)"
    if facts.interface is not None:  # set by udev's usb_id (60-serial.rules) before this file runs
        match.append(f'ENV{{ID_USB_INTERFACE_NUM}}=="{facts.interface}"')
        what += f", interface {facts.interface} (one port of several)"
    device = facts.description or f"{facts.vendor}:{facts.product}"
    comment = f"# {name}: {device}, matched by {what}"
    action = f'SYMLINK+="coldgate/{name}", GROUP="dialout", MODE="0660"'
    return f"{comment}\n{', '.join(match)}, {action}\n"
