"""The optional fields added on 2026-12-06: old messages unchanged, the new rules refused precisely.

An older peer's decoder is today's without the new fields; a message that
uses none of them must encode byte for byte as before, and one that breaks a
new cross-field rule is refused with the field named.
"""

from __future__ import annotations

import datetime

import pytest

from coldgate.contract.codec import decode, encode
from coldgate.contract.downlink import (
    BatchInfo,
    MasterData,
    Product,
    RecallEntry,
    RecallList,
    TemperatureClass,
)
from coldgate.contract.errors import ContractError
from coldgate.contract.items import Scan
from coldgate.contract.uplink import Topology, TopologyNode

GTIN = "80614141123458"
CLASS = TemperatureClass(name="2-8C", low=2.0, high=8.0)


def _master(products: list[Product], batches: list[BatchInfo] | None = None) -> bytes:
    doc = MasterData(v=1, gateway="gw1", version=1, issued=1, temperature_classes=[CLASS], products=products,
                     batches=batches or [])  # fmt: skip
    return encode(doc)


def test_a_gtin_product_encodes_as_it_did_before_the_additions():
    assert encode(Product(gtin=GTIN, name="Pen", temperature_class="2-8C")) == (
        b'{"gtin":"80614141123458","name":"Pen","temperature_class":"2-8C"}'
    )
    assert encode(RecallEntry(gtin=GTIN, lot="L1", status="recalled", reference="R")) == (
        b'{"gtin":"80614141123458","lot":"L1","status":"recalled","reference":"R"}'
    )


def test_a_product_without_gtin_is_keyed_by_its_id_and_round_trips():
    product = Product(id="KIT-7", name="Kit", temperature_class="2-8C", hibc="A123KIT7", hibc_uom=1)
    batch = BatchInfo(product="KIT-7", lot="L9", expiry=datetime.date(2027, 1, 31), expiry_hour=12)
    data = _master([product], [batch])
    back = decode(data, MasterData)
    assert back.products[0].key == "KIT-7" and back.batches[0].key == "KIT-7"
    assert back.batches[0].expiry_hour == 12


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"name":"Kit","temperature_class":"2-8C"}', "gtin"),
        (b'{"id":"K","name":"Kit","temperature_class":"2-8C","hibc_uom":1}', "hibc_uom"),
    ],
)
def test_a_product_breaking_a_rule_is_refused_naming_the_field(body: bytes, where: str):
    data = b'{"v":1,"gateway":"gw1","version":1,"issued":1,"temperature_classes":[{"name":"2-8C","low":2,' \
        b'"high":8}],"products":[' + body + b"]}"  # fmt: skip
    with pytest.raises(ContractError) as caught:
        decode(data, MasterData)
    assert f"products[0].{where}" in str(caught.value)


def test_two_products_claiming_one_hibc_code_are_refused():
    a = Product(id="A", name="A", temperature_class="2-8C", hibc="A123X")
    b = Product(id="B", name="B", temperature_class="2-8C", hibc="A123X")
    data = _master([a]).replace(b"}]}", b"}," + encode(b) + b"]}")
    with pytest.raises(ContractError, match=r"products\[1\]\.hibc: duplicate A123X"):
        decode(data, MasterData)
    # Another unit of measure is another package of the same product code: allowed.
    c = Product(id="C", name="C", temperature_class="2-8C", hibc="A123X", hibc_uom=2)
    assert len(decode(_master([a, c]), MasterData).products) == 2


@pytest.mark.parametrize(
    "entry",
    [
        b'{"status":"recalled","reference":"R"}',
        b'{"gtin":"80614141123458","product":"K","status":"recalled","reference":"R"}',
    ],
)
def test_a_recall_entry_names_exactly_one_product_key(entry: bytes):
    data = b'{"v":1,"gateway":"gw1","version":1,"issued":1,"entries":[' + entry + b"]}"
    with pytest.raises(ContractError, match=r"entries\[0\]\.gtin: give either the gtin or the product id"):
        decode(data, RecallList)


def test_a_scan_with_an_expiry_hour_but_no_expiry_is_refused():
    from coldgate.contract.codec import decode_item

    item = (b'{"kind":"scan","seq":1,"ts":1,"boot":"0123456789abcdef","mono":1,"synced":true,'
            b'"scanner":"s1","raw":"x","expiry_hour":5}')  # fmt: skip
    with pytest.raises(ContractError, match="expiry_hour: an expiry hour needs the expiry date"):
        decode_item(item)
    ok = Scan(seq=1, ts=1, boot="0123456789abcdef", mono=1, synced=True, scanner="s1", raw="x",
              scheme="hibc", hibc="A123PROD", hibc_uom=1, expiry=datetime.date(2027, 1, 1), expiry_hour=5,
              produced=datetime.date(2025, 1, 1), best_before=datetime.date(2027, 6, 1),
              quantity=10)  # fmt: skip
    assert decode_item(encode(ok)) == ok


def test_a_topology_with_a_sensor_twice_is_refused():
    from coldgate.contract.codec import decode_status

    status = b'{"v":1,"site":"s","gateway":"g","boot":"0123456789abcdef","ts":1,"state":"online","topology":'
    with pytest.raises(ContractError, match=r"topology\.sensors\[1\]\.id: duplicate 's1'"):
        decode_status(status + b'{"sensors":[{"id":"s1"},{"id":"s1","zone":"z"}]}}')
    topology = encode(Topology(sensors=[TopologyNode(id="s1", zone="z")]))
    assert decode_status(status + topology + b"}").topology.sensors[0].zone == "z"
