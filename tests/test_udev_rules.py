"""Stable device names (issue 19): the rule ``coldgate gateway udev-rule`` prints names the device it was
made for and no other, however the adapters are numbered at the next boot.

This machine has no USB adapters and no udev: sysfs is a folder laid out as a Raspberry Pi 4's is (the
links and attribute files udev walks), and the rules are matched the way udev matches them: every
``ATTRS``/``KERNELS`` key of a rule against one and the same device up the tty's parent chain.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from coldgate.gateway.cli import gateway
from coldgate.gateway.udev_rules import DeviceFacts, UdevError, device_facts, rule_for

ROOT = Path(__file__).resolve().parents[1]
USB_BUS = "devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1"
FTDI = {"idVendor": "0403", "idProduct": "6001", "manufacturer": "FTDI", "product": "FT232R USB UART"}
CH340 = {"idVendor": "1a86", "idProduct": "7523", "product": "USB Serial"}


def plug(
    sys_root: Path, tty: str, port: str, attrs: dict[str, str], acm: bool = False, interface_number: int = 0
) -> None:
    """A USB serial device in ``port`` (``1-1.2``) as sysfs shows it: usb-serial (ttyUSB) or CDC ACM;
    ``interface_number``: which port of a multi-port adapter (plug it once per port)."""
    usb = sys_root / USB_BUS / port
    usb.mkdir(parents=True, exist_ok=True)
    for name, value in attrs.items():
        (usb / name).write_text(value + "\n")
    interface = usb / f"{port}:1.{interface_number}"
    interface.mkdir(parents=True, exist_ok=True)
    (interface / "bInterfaceNumber").write_text(f"{interface_number:02x}\n")
    if acm:  # .../1-1.3:1.0/tty/ttyACM0, its device link to the interface
        node, device = interface / "tty" / tty, interface
    else:  # .../1-1.2:1.0/ttyUSB0/tty/ttyUSB0, its device link to the usb-serial port
        node, device = interface / tty / "tty" / tty, interface / tty
    node.mkdir(parents=True)
    (node / "device").symlink_to(device)
    tty_class = sys_root / "class" / "tty"
    tty_class.mkdir(parents=True, exist_ok=True)
    (tty_class / tty).symlink_to(node)


RULE_ITEM = re.compile(r'^(?P<key>[A-Z]+)(?:\{(?P<attr>[A-Za-z_]+)\})?(?P<op>==|\+=|=)"(?P<value>[^"]*)"$')


def parse_rule(line: str) -> tuple[dict[str, str], dict[str, str]]:
    """(match keys, assignments) of one rule line, failing on anything udev would not take."""
    matches: dict[str, str] = {}
    assigns: dict[str, str] = {}
    for item in line.split(", "):
        found = RULE_ITEM.match(item)
        assert found, f"not a udev rule item: {item!r}"
        key = found["key"] + (f"{{{found['attr']}}}" if found["attr"] else "")
        if found["op"] == "==":
            assert found["key"] in ("SUBSYSTEM", "ATTRS", "KERNELS", "ENV"), item
            matches[key] = found["value"]
        else:
            assert found["key"] in ("SYMLINK", "GROUP", "MODE"), item
            assigns[key] = found["value"]
    return matches, assigns


def udev_names(sys_root: Path, rules: str, tty: str) -> list[str]:
    """The /dev/coldgate names ``rules`` give ``tty``: a rule matches when its ATTRS and KERNELS keys all
    hold for one device up the parent chain (as udev's ``ATTRS``/``KERNELS`` do)."""
    names = []
    chain = [
        (sys_root / "class" / "tty" / tty).resolve(),
        *(sys_root / "class" / "tty" / tty).resolve().parents,
    ]
    for line in rules.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        matches, assigns = parse_rule(line)
        if matches.pop("SUBSYSTEM", "tty") != "tty":
            continue
        # ENV{ID_USB_INTERFACE_NUM}: what udev's usb_id sets, the tty's own interface number.
        wanted = matches.pop("ENV{ID_USB_INTERFACE_NUM}", None)
        number = next(
            (
                f.joinpath("bInterfaceNumber").read_text().strip()
                for f in chain
                if (f / "bInterfaceNumber").is_file()
            ),
            None,
        )
        if wanted is not None and wanted != number:
            continue
        for folder in chain:
            attrs_hold = all(
                (folder / key[6:-1]).is_file() and (folder / key[6:-1]).read_text().strip() == value
                for key, value in matches.items()
                if key.startswith("ATTRS")
            )
            if attrs_hold and matches.get("KERNELS", folder.name) == folder.name:
                names.append(assigns["SYMLINK"])
                break
    return names


def test_an_adapter_with_its_own_serial_is_named_by_it_in_any_port(tmp_path: Path) -> None:
    plug(tmp_path, "ttyUSB0", "1-1.2", {**FTDI, "serial": "A10K3XYZ"})
    plug(tmp_path, "ttyUSB1", "1-1.4", {**FTDI, "serial": "A9X7QQ01"})
    facts = device_facts("/dev/ttyUSB0", tmp_path)
    assert facts == DeviceFacts("ttyUSB0", "0403", "6001", "A10K3XYZ", "1-1.2", "FTDI FT232R USB UART")
    rule = rule_for(facts, "rs485-cold-rooms")
    assert "matched by serial number A10K3XYZ" in rule and "ENV{" not in rule, "one port: no interface key"
    assert udev_names(tmp_path, rule, "ttyUSB0") == ["coldgate/rs485-cold-rooms"]
    assert udev_names(tmp_path, rule, "ttyUSB1") == [], "the other FTDI adapter must not get the name"
    moved = tmp_path / "after-reboot"  # the same adapter re-plugged elsewhere and numbered second
    plug(moved, "ttyUSB0", "1-1.2", {**FTDI, "serial": "A9X7QQ01"})
    plug(moved, "ttyUSB1", "1-1.3", {**FTDI, "serial": "A10K3XYZ"})
    assert udev_names(moved, rule, "ttyUSB1") == ["coldgate/rs485-cold-rooms"]
    assert udev_names(moved, rule, "ttyUSB0") == []


@pytest.mark.parametrize("serial", [None, "A50285BI"], ids=["no serial", "a clone's shared serial"])
def test_adapters_that_look_alike_are_named_by_their_port(tmp_path: Path, serial: str | None) -> None:
    attrs = {**CH340, **({"serial": serial} if serial else {})}
    plug(tmp_path, "ttyUSB0", "1-1.2", attrs)
    plug(tmp_path, "ttyUSB1", "1-1.3", attrs)
    rules = rule_for(device_facts("ttyUSB0", tmp_path), "rs485-a") + rule_for(
        device_facts("ttyUSB1", tmp_path), "rs485-b"
    )
    assert "matched by USB port 1-1.2" in rules
    assert udev_names(tmp_path, rules, "ttyUSB0") == ["coldgate/rs485-a"]
    assert udev_names(tmp_path, rules, "ttyUSB1") == ["coldgate/rs485-b"]
    with pytest.raises(UdevError, match=r"--by port"):
        rule_for(device_facts("ttyUSB0", tmp_path), "rs485-a", by="serial")


def test_a_cdc_scanner_is_found_through_its_interface(tmp_path: Path) -> None:
    plug(
        tmp_path,
        "ttyACM0",
        "1-1.3",
        {"idVendor": "0c2e", "idProduct": "0b61", "serial": "19012B4F1E"},
        acm=True,
    )
    rule = rule_for(device_facts("ttyACM0", tmp_path), "scanner-dock-1", by="port")
    assert 'KERNELS=="1-1.3"' in rule and "serial" not in rule.splitlines()[1]
    assert udev_names(tmp_path, rule, "ttyACM0") == ["coldgate/scanner-dock-1"]


def test_what_cannot_be_named_says_why(tmp_path: Path) -> None:
    with pytest.raises(UdevError, match=r"/dev/ttyUSB7: no such serial device .* is it plugged in\?"):
        device_facts("/dev/ttyUSB7", tmp_path)
    uart = tmp_path / "devices/platform/soc/fe201000.serial/tty/ttyAMA0"
    uart.mkdir(parents=True)
    (tmp_path / "class" / "tty").mkdir(parents=True)
    (tmp_path / "class" / "tty" / "ttyAMA0").symlink_to(uart)
    with pytest.raises(UdevError, match=r"ttyAMA0: not a USB device"):
        device_facts("ttyAMA0", tmp_path)
    facts = DeviceFacts("ttyUSB0", "0403", "6001", "A10K3XYZ", "1-1.2")
    for bad in ("RS485", "../etc", "a b", ""):
        with pytest.raises(UdevError, match=r"name .*: use 1-64 lower-case"):
            rule_for(facts, bad)


def test_the_shipped_rules_file_is_valid_and_names_what_the_examples_use() -> None:
    text = (ROOT / "deploy/pi/99-coldgate.rules").read_text()
    examples = [line[1:] for line in text.splitlines() if line.startswith("#SUBSYSTEM")]
    assert len(examples) == 3
    names = [parse_rule(line)[1]["SYMLINK"] for line in examples]
    assert all(name.startswith("coldgate/") for name in names)
    config = (ROOT / "deploy/examples/gateway-cold-room.toml").read_text()
    assert 'port = "/dev/coldgate/rs485-cold-rooms"' in config


def test_the_command_prints_the_rule_and_what_to_do_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plug(tmp_path, "ttyUSB0", "1-1.2", CH340)
    import coldgate.gateway.udev_rules as udev_rules

    real = udev_rules.device_facts
    monkeypatch.setattr(udev_rules, "device_facts", lambda device: real(device, tmp_path))
    done = CliRunner().invoke(gateway, ["udev-rule", "/dev/ttyUSB0", "--name", "rs485-a"])
    assert done.exit_code == 0, done.output
    assert udev_names(tmp_path, done.stdout, "ttyUSB0") == ["coldgate/rs485-a"]
    assert "udevadm control --reload" in done.stderr and 'port = "/dev/coldgate/rs485-a"' in done.stderr
    refused = CliRunner().invoke(gateway, ["udev-rule", "/dev/ttyUSB9", "--name", "x"])
    assert refused.exit_code == 1 and "no such serial device" in refused.output
    assert "Traceback" not in refused.output


def test_the_ports_of_one_multi_port_adapter_are_told_apart_by_their_interface(tmp_path: Path) -> None:
    """An FT2232's two ports share vendor, product, serial and USB port: only the interface differs
    (review: both names pointed at both ports)."""
    dual = {**FTDI, "idProduct": "6010", "serial": "FT2232X1"}
    plug(tmp_path, "ttyUSB0", "1-1.2", dual, interface_number=0)
    plug(tmp_path, "ttyUSB1", "1-1.2", dual, interface_number=1)
    rules = rule_for(device_facts("ttyUSB0", tmp_path), "rs485-a") + rule_for(
        device_facts("ttyUSB1", tmp_path), "rs485-b"
    )
    assert 'ENV{ID_USB_INTERFACE_NUM}=="01"' in rules and "interface 01 (one port of several)" in rules
    assert udev_names(tmp_path, rules, "ttyUSB0") == ["coldgate/rs485-a"]
    assert udev_names(tmp_path, rules, "ttyUSB1") == ["coldgate/rs485-b"]


def test_a_serial_a_rule_cannot_quote_is_not_used(tmp_path: Path) -> None:
    plug(tmp_path, "ttyUSB0", "1-1.2", {**FTDI, "serial": 'A1"B2'})
    rule = rule_for(device_facts("ttyUSB0", tmp_path), "rs485-a")
    assert 'KERNELS=="1-1.2"' in rule and 'A1"B2' not in rule
