"""A product's MA id is checked as the contract's master data carries it (``contract.ids.MA_PATTERN``):
one the catalog stores is one every gateway takes, and one it cannot is refused where it can be fixed,
naming the field and the value."""

from __future__ import annotations

import re

import pytest

from coldgate.cloud.catalog.products import check_product
from coldgate.cloud.identity.users import UserInputError
from coldgate.contract.ids import MA_PATTERN

CLASSES = {"2-8C"}


def _product(ma_id: object) -> dict[str, object]:
    return {"name": "Stent", "ma_id": ma_id, "temperature_class": "2-8C"}


@pytest.mark.parametrize(
    "ma_id",
    ["MA.156.M0.100001.1A2B3C", "MA.1.2.3.4", "MA.156.M0.100001.item_1-b"],
)
def test_an_ma_device_identifier_is_stored_as_given(ma_id: str) -> None:
    assert check_product(_product(ma_id), CLASSES)["ma_id"] == ma_id
    assert re.search(MA_PATTERN, ma_id)


@pytest.mark.parametrize(
    "ma_id",
    ["ma-in20", "gauze-1", "MA-1", "MA.156", "MA.156.M0", "ma.156.M0.1.2", "MA.156..M0.1", "MA.156.M0.1.",
     "MA.156.M 0.1.2", "MA.1.2.3.4.5", "MA.156.M0.100001.1A2B3C.L2405A1", "MA.12345678901234567.M0.1.2"],
)  # fmt: skip
def test_an_ma_id_the_contract_cannot_carry_is_refused_naming_the_field_and_value(ma_id: str) -> None:
    with pytest.raises(UserInputError) as refused:
        check_product(_product(ma_id), CLASSES)
    assert refused.value.field == "ma_id"
    assert str(refused.value) == (
        f"ma_id: {ma_id!r} is not an MA device identifier such as MA.156.M0.100001.0001A "
        "(MA. then 4 dot-separated fields of 1-16 of A-Z a-z 0-9 _ -: country, category, organisation, item)"
    )


def test_an_ma_id_with_a_trailing_newline_or_too_long_is_refused_too() -> None:
    for ma_id, says in (
        ("MA.156.M0.1.2\n", "control characters"),
        ("MA." + ".".join(["A" * 16] * 4), "longer"),
    ):
        with pytest.raises(UserInputError, match=says) as refused:
            check_product(_product(ma_id), CLASSES)
        assert refused.value.field == "ma_id"
