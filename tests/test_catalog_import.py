"""CSV import of products, lots and serials, on both dialects: a whole file or nothing, every bad row named
(line as a spreadsheet shows it, column, value, why), clashes with what is stored found, one audit entry."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select, text

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import verify
from coldgate.cloud.catalog import csv_check
from coldgate.cloud.catalog.csv_import import import_csv
from coldgate.cloud.catalog.csv_read import MAX_SHOWN
from coldgate.cloud.catalog.lots import put_lot
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.versions import Conflict
from coldgate.cloud.cli import cloud
from coldgate.cloud.db.models import AuditEntry, LotSerial, LotVersion, ProductIdentifier, ProductVersion
from tests.rig.catalog import QA, make_catalog
from tests.rig.people import bearer, person

PRODUCTS = (
    "id,name,gtin,hibc_lic,hibc_pcn,ma_id,temperature_class,tor_budget_s,serialised\n"
    "P1,Vaccine A,5901234123457,,,,2-8C,3600,yes\n"
    "P2,Gauze,,A123,G55,,2-8C,,no\n"
    'P3,"Insulin, pen",,,,MA.156.M0.100001.INS3,2-8C,,true\n'
)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    make_catalog(engine, lots=("L1",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def people(engine: Engine) -> dict[str, dict[str, str]]:
    return {role: bearer(person(engine, login, (role,))[1])
            for role, login in (("qa_manager", "marta"), ("viewer", "vera"))}  # fmt: skip


def post(
    client: TestClient, kind: str, data: str | bytes, who: dict[str, str], reason: str = "ERP load"
) -> Any:
    body = data.encode() if isinstance(data, str) else data
    return client.post(f"/catalog/import/{kind}", params={"reason": reason}, content=body,
                       headers={**who, "Content-Type": "text/csv"})  # fmt: skip


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def _imports(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        query = select(AuditEntry).where(AuditEntry.action == "catalog.import").order_by(AuditEntry.seq)
        return list(conn.execute(query))


def test_good_files_import_whole_and_are_listed(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    manager, viewer = people["qa_manager"], people["viewer"]
    assert post(client, "products", PRODUCTS, viewer).status_code == 403
    done = post(client, "products", PRODUCTS, manager)
    assert done.status_code == 200, done.text
    assert done.json() | {"sha256": "-"} == {"kind": "products", "sha256": "-", "rows": 3, "created": 3,
                                             "updated": 0, "unchanged": 0}  # fmt: skip
    listed = {p["id"]: p for p in client.get("/catalog/products", headers=viewer).json()}
    assert listed["P1"]["gtin"] == "05901234123457" and listed["P1"]["tor_budget_s"] == 3600
    assert listed["P3"]["name"] == "Insulin, pen" and listed["P3"]["reason"] == "ERP load"
    assert listed["P2"]["hibc_lic"] == "A123" and not listed["P2"]["serialised"]
    changed = PRODUCTS.replace("Gauze", "Gauze 10 cm")
    again = post(client, "products", changed, manager).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 2)
    assert client.get("/catalog/products/P2", headers=viewer).json()["version"] == 2

    lots = ("product,lot,expiry,expiry_hour,manufactured,status\n"
            "P1,A-1,2027-06-30,,2026-01-15,\nP3,B-7,2027-01-31,12,,quarantined\n")
    done = post(client, "lots", lots, manager)
    assert done.status_code == 200 and done.json()["created"] == 2, done.text
    lot = client.get("/catalog/products/P3/lots/B-7", headers=viewer).json()
    assert (lot["status"], lot["expiry_hour"], lot["reason"]) == ("quarantined", 12, "ERP load")
    assert post(client, "lots", lots, manager).json()["unchanged"] == 2  # the same file again: nothing new

    serials = "product,lot,first,last\nP1,A-1,000001,001000\nP1,A-1,X9,\nP3,B-7,7,\n"
    done = post(client, "serials", serials, manager)
    assert done.status_code == 200 and done.json()["created"] == 3, done.text
    assert client.get("/catalog/products/P1/serials/000500", headers=viewer).json()["lot"] == "A-1"
    assert client.get("/catalog/products/P1/lots/A-1/serials", headers=viewer).json()[0]["serials"] == 1000

    entries = _imports(engine)
    kinds = [json.loads(e.after)["kind"] for e in entries]
    assert kinds == ["products", "products", "lots", "lots", "serials"]
    first = json.loads(entries[0].after)
    assert first["sha256"] == hashlib.sha256(PRODUCTS.encode()).hexdigest() and first["rows"] == 3
    assert entries[0].reason == "ERP load" and entries[0].actor_name == "Marta Tester"
    with engine.connect() as conn:
        assert verify(conn)[1] is None


BAD_PRODUCTS = (
    "id,name,gtin,hibc_lic,hibc_pcn,ma_id,temperature_class,tor_budget_s,serialised\n"
    "P1,Vaccine A,5901234123457,,,,2-8C,3600,yes\n"  # line 2: good
    "P2,Vaccine B,4006381333932,,,,2-8C,,\n"  # line 3: check digit
    "P3,Gauze,,A123,,,2-8C,,\n"  # line 4: HIBC without its product code
    "P1,Again,,,,MA.156.M0.1.9,2-8C,,\n"  # line 5: id twice
    "P5,Copy,5901234123457,,,,2-8C,,\n"  # line 6: GTIN of line 2
    "P6,Clash,4006381333948,,,,frozen,,\n"  # line 7: unknown class
    "P7,Taken,,,,MA.156.M0.1.7,2-8C,,maybe\n"  # line 8: serialised
    "P8,Stored GTIN,4006381333931x,,,,2-8C,,\n"  # line 9: no GTIN
    "bad id!,Name,,,,ma-10,2-8C,,\n"  # line 10: id
    "P9,Short,,,\n"  # line 11: cells
)


def test_a_file_with_bad_rows_imports_nothing_and_names_each(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    refused = post(client, "products", BAD_PRODUCTS, people["qa_manager"])
    assert refused.status_code == 422, refused.text
    got = [(e["line"], e["column"], e["value"]) for e in refused.json()["detail"]]
    assert got == [
        (3, "gtin", "4006381333932"), (4, "hibc_pcn", ""), (5, "id", "P1"), (6, "gtin", "5901234123457"),
        (7, "temperature_class", "frozen"), (8, "serialised", "maybe"), (9, "gtin", "4006381333931x"),
        (10, "id", "bad id!"), (11, "-", "P9,Short,,,"),
    ]  # fmt: skip
    why = {e["line"]: e["why"] for e in refused.json()["detail"]}
    assert "check digit of 04006381333932 is wrong" in why[3]
    assert why[5] == "product 'P1' is also on line 2"
    assert why[6] == "05901234123457 also names product 'P1' on line 2"
    assert "no temperature class 'frozen'" in why[7] and "is not true or false" in why[8]
    assert why[11] == "5 cells where the header has 9"
    assert _count(engine, ProductVersion) == 2 and _imports(engine) == []  # the two make_catalog made

    stored = post(client, "products", "id,name,gtin,temperature_class\nNEW,New,4006381333931,2-8C\n",
                  people["qa_manager"])  # fmt: skip
    assert stored.status_code == 422
    assert stored.json()["detail"][0]["why"] == "04006381333931 already names product 'VX10'"


def test_lots_and_serials_clashing_with_what_is_stored_are_named(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    manager = people["qa_manager"]
    lots = ("product,lot,expiry,manufactured,status\n"
            "VX10,L1,2028-01-01,,\n"  # stored with 2027-12-31
            "VX10,L2,2027-01-01,2027-02-01,\n"  # made after it expires
            "NOPE,L3,,,\n"
            "VX10,L4,,,lost\n"
            "VX10,L5,31.12.2027,,\n"
            "VX10,L6,,,\nVX10,L6,,,\n")  # fmt: skip
    refused = post(client, "lots", lots, manager)
    assert refused.status_code == 422
    got = [(e["line"], e["column"], e["value"], e["why"]) for e in refused.json()["detail"]]
    assert got == [
        (2, "expiry", "2028-01-01",
         "lot 'L1' of 'VX10' is stored with expiry 2027-12-31, not 2028-01-01: "
         "change a stored lot through the API"),
        (3, "manufactured", "2027-02-01", "2027-02-01 is after the expiry 2027-01-01"),
        (4, "product", "NOPE", "no product 'NOPE'"),
        (5, "status", "lost", "'lost' is not a lot status (released, quarantined, recalled, rejected)"),
        (6, "expiry", "31.12.2027", "'31.12.2027' is not a date (YYYY-MM-DD)"),
        (8, "lot", "L6", "lot 'L6' of 'VX10' is also on line 7"),
    ]  # fmt: skip
    assert _count(engine, LotVersion) == 2

    first = post(client, "serials", "product,lot,first,last\nVX10,L1,0100,0199\nVX10,L1,A7,\n", manager)
    assert first.status_code == 200, first.text
    serials = ("product,lot,first,last\n"
               "VX10,L1,0150,0250\n"  # overlaps the stored range
               "VX10,L1,A7,\n"  # stored exactly so for L1: unchanged, no clash
               "VX10,L1,0300,0399\nVX10,L1,0350,\n"  # overlap within the file
               "VX10,L9,1,\n"  # no such lot
               "PLAIN,G1,1,\n"  # not serialised
               "VX10,L1,12,3\n")  # fmt: skip
    refused = post(client, "serials", serials, manager)
    assert refused.status_code == 422
    got = [(e["line"], e["column"], e["value"], e["why"]) for e in refused.json()["detail"]]
    assert got == [
        (2, "last", "0250", "0150..0250 overlaps 0100..0199 of lot 'L1' (stored)"),
        (5, "first", "0350", "serial 0350 already belongs to lot 'L1' (0300..0399) (line 4)"),
        (6, "lot", "L9", "no lot 'L9' of product 'VX10'"),
        (7, "product", "PLAIN", "product 'PLAIN' is not serialised"),
        (8, "last", "3", "'3' is not as wide as '12': a range's ends have the same number of digits"),
    ]  # fmt: skip
    assert _count(engine, LotSerial) == 2


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"id,name\xff,temperature_class\n", "byte 7 (0xff) is not UTF-8"),
        (b"", "the file is empty"),
        (b"id,name,temperature_class\n", "a header but no rows"),
        (b"id,nam,temperature_class\n", "no such column"),
        (b'id,name,temperature_class\nP1,"Unclosed,2-8C\n', "not CSV"),
        (b"id,id,name,temperature_class\nP1,P1,x,2-8C\n", "the column appears twice"),
    ],
)
def test_a_file_that_is_no_csv_is_refused_precisely(
    client: TestClient, people: dict[str, dict[str, str]], data: bytes, says: str
) -> None:
    refused = post(client, "products", data, people["qa_manager"])
    assert refused.status_code == 422, refused.text
    assert says in refused.json()["detail"][0]["why"], refused.text


def test_the_report_is_capped_and_counts_the_rest(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    rows = "".join(f"P{i},x,,,,,2-8C,,\n" for i in range(MAX_SHOWN + 20))  # no identifier in any
    refused = post(client, "products", PRODUCTS.splitlines()[0] + "\n" + rows, people["qa_manager"]).json()
    assert len(refused["detail"]) == MAX_SHOWN and refused["more"] == 20
    assert refused["detail"][0]["line"] == 2 and refused["detail"][-1]["line"] == MAX_SHOWN + 1
    assert "needs a GTIN, an HIBC code or an MA id" in refused["detail"][0]["why"]


CELL = st.one_of(
    st.sampled_from(["", "P1", "VX10", "L1", "2-8C", "4006381333931", "0001", "0100", "9", "yes",
                     "2027-13-01", "A123", "G5", "12", "released", "recalled", '"', ",", "\n"]),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["products", "lots", "serials"]),
       rows=st.lists(st.lists(CELL, min_size=2, max_size=10), min_size=1, max_size=6))  # fmt: skip
def test_any_file_imports_whole_or_not_at_all(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]], kind: str, rows: list[list[str]]
) -> None:
    header = {"products": "id,name,gtin,hibc_lic,hibc_pcn,hibc_uom,ma_id,temperature_class,tor_budget_s,"
                          "serialised", "lots": "product,lot,expiry,expiry_hour,manufactured,status",
              "serials": "product,lot,first,last"}[kind]  # fmt: skip
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    data = (header + "\n" + out.getvalue()).encode("utf-8", "surrogatepass")
    counts = (_count(engine, ProductVersion), _count(engine, LotVersion), _count(engine, LotSerial))
    imports = len(_imports(engine))
    reply = post(client, kind, data, people["qa_manager"])
    assert reply.status_code in (200, 422), reply.text
    after = (_count(engine, ProductVersion), _count(engine, LotVersion), _count(engine, LotSerial))
    if reply.status_code == 422:
        assert after == counts and len(_imports(engine)) == imports
        assert all({"line", "column", "value", "why"} <= e.keys() for e in reply.json()["detail"])
    else:
        made = reply.json()["created"] + reply.json()["updated"]
        assert sum(after) - sum(counts) == made and len(_imports(engine)) == imports + 1


def test_the_cli_imports_as_a_named_qa_manager(engine: Engine, db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    make_catalog(engine, lots=())
    manager_id, _ = person(engine, "marta", ("qa_manager",))
    person(engine, "ada", ("admin",))
    good, bad = tmp_path / "products.csv", tmp_path / "bad.csv"
    good.write_text(PRODUCTS)
    bad.write_text(BAD_PRODUCTS)
    runner = CliRunner()

    def run(*args: str | Path) -> Any:
        command = ["catalog", "import", str(config), *map(str, args)]
        return runner.invoke(cloud, command, catch_exceptions=False)

    not_qa = run("products", good, "--reason", "ERP load", "--by", "ada")
    assert not_qa.exit_code != 0 and "may not import into the catalog (catalog.manage" in not_qa.output
    refused = run("products", bad, "--reason", "ERP load", "--by", "marta")
    assert refused.exit_code != 0 and "9 problem(s): nothing imported" in refused.output
    assert f"{bad}:line 3, column gtin = '4006381333932': the check digit" in refused.output
    done = run("products", good, "--reason", "ERP load", "--by", "marta")
    assert done.exit_code == 0 and "3 row(s) imported: 3 created, 0 updated, 0 unchanged" in done.output
    [entry] = _imports(engine)
    assert entry.actor_id == manager_id and "coldgate CLI" in (entry.client or "")


def test_imported_rows_are_stored_exactly_as_the_api_stores_them(engine: Engine) -> None:
    """The bulk path (COPY, the driver's executemany) against SQLAlchemy's own INSERT: the same text."""
    make_catalog(engine, lots=("L1",))
    when = datetime.datetime(2026, 12, 6, 12, 30, 1, 5, tzinfo=datetime.UTC)
    file = b"id,name,ma_id,temperature_class,serialised\nB,b,MA.156.M0.1.B1,2-8C,yes\n"
    with engine.begin() as conn:
        fields = {"name": "a", "ma_id": "MA.156.M0.1.A1", "temperature_class": "2-8C", "serialised": True}
        put_product(conn, "A", fields, reason="r", by=QA, now=when)
        put_lot(conn, "A", "L", {"expiry": "2027-01-02"}, reason="r", by=QA, now=when)
        import_csv(conn, "products", file, reason="r", by=QA, now=when)
        import_csv(conn, "lots", b"product,lot,expiry\nB,L,2027-01-02\n", reason="r", by=QA, now=when)
        shown = "SELECT CAST(changed_at AS TEXT), CAST({} AS TEXT) FROM {} WHERE {} IN ('A', 'B') ORDER BY 1"
        products = conn.execute(text(shown.format("serialised", "products", "id"))).all()
        lots = conn.execute(text(shown.format("expiry", "lots", "product"))).all()
    assert products[0] == products[1] and lots[0] == lots[1], (products, lots)


def test_a_key_claimed_between_check_and_write_is_a_conflict_and_nothing_is_kept(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent writer claiming an identifier after the file was checked: the insert fails on the
    unique key, the import rolls back whole and says so (409 through the API)."""
    make_catalog(engine, lots=())
    checked = csv_check.check_product_rows
    importing: list[Any] = []  # the import's connection, once it runs

    def and_meanwhile(*args: Any) -> Any:
        plan = checked(*args)
        claim = {"scheme": "ma", "value": "MA.156.M0.100001.INS3", "product": "OTHER"}
        importing[0].execute(insert(ProductIdentifier).values(**claim))
        return plan

    monkeypatch.setattr(csv_check, "check_product_rows", and_meanwhile)
    with pytest.raises(Conflict, match="changed while the file was imported"), engine.begin() as conn:
        importing.append(conn)
        now = datetime.datetime.now(datetime.UTC)
        import_csv(conn, "products", PRODUCTS.encode(), reason="r", by=QA, now=now)
    assert _count(engine, ProductVersion) == 2 and _imports(engine) == []
