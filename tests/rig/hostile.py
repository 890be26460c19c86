"""Hypothesis strategies for hostile up-link messages, each with what ingest must make of it.

A broker relays whatever a client publishes, so ingest sees bytes an attacker
or a broken gateway chose.  Each strategy starts from a valid batch of
gateway ``HOSTILE_GATEWAY`` and breaks one thing, and says what must happen:

* ``good``: the seqs of items that are still valid.  Ingest may store these
  (salvage keeps the good items of a batch whose envelope is sound) and
  nothing else; a hostile item must never become a reading.
* ``must_salvage``: the envelope is sound and exactly one item is bad, so the
  good items must be stored and the bad one dead-lettered.  Where the
  contract allows either (a deeply nested or non-UTF-8 item may break the
  envelope parse too), it is False and only "nothing hostile stored" holds.
* ``conflicts``: seqs re-sent with other content than the stored baseline;
  each must be dead-lettered as a conflict and the stored row kept.

Items are built as plain JSON documents, not Structs, so a strategy can
produce what no Struct would allow.  Fresh seqs start above the baseline
(``BASELINE_SEQS``), which a test stores first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from hypothesis import strategies as st

from coldgate.contract.topics import batch_topic, status_topic
from tests.rig.ingest import BOOT, NOW_MS, SITE, STREAM, announce_message

__all__ = [
    "BASELINE_SEQS",
    "HOSTILE_GATEWAY",
    "Hostile",
    "announcement",
    "baseline_message",
    "hostile",
    "nul_in_free_text",
    "reading_doc",
]

HOSTILE_GATEWAY = "gw01"
#: Other ids a spoof may claim; tests keep their valid gateways out of this set.
SPOOFED_IDS = ("gw02", "gw03", "site2", "GW01", "gw01x")
BASELINE_SEQS = range(1, 51)
FRESH = 51
TOPIC = batch_topic(SITE, HOSTILE_GATEWAY)


@dataclass(frozen=True)
class Hostile:
    label: str
    topic: str
    payload: bytes
    good: frozenset[int] = frozenset()
    must_salvage: bool = False
    conflicts: frozenset[int] = frozenset()

    def __repr__(self) -> str:  # hypothesis prints failing examples; keep huge payloads readable
        shown = self.payload if len(self.payload) < 600 else self.payload[:600] + b"..."
        return f"Hostile({self.label!r}, {self.topic!r}, {shown!r}, good={sorted(self.good)})"


def reading_doc(seq: int, value: float = 4.5, sensor: str = "cr1-t01") -> dict[str, Any]:
    """A valid reading as the JSON document a gateway would send."""
    return {
        "kind": "reading",
        "seq": seq,
        "ts": NOW_MS + seq * 1000,
        "boot": BOOT,
        "mono": 1_000_000 + seq * 1000,
        "synced": True,
        "sensor": sensor,
        "quantity": "temperature",
        "value": value,
        "unit": "CEL",
    }


def envelope(
    items: list[Any],
    *,
    gateway: str = HOSTILE_GATEWAY,
    site: str = SITE,
    seqs: list[int] | None = None,
) -> dict[str, Any]:
    """A sound batch envelope around ``items``; its range spans ``seqs`` (default: the items' seqs)."""
    if seqs is None:
        seqs = [i["seq"] for i in items if isinstance(i, dict) and isinstance(i.get("seq"), int)]
    return {
        "v": 1,
        "site": site,
        "gateway": gateway,
        "boot": BOOT,
        "stream": STREAM,
        "first_seq": min(seqs, default=FRESH),
        "last_seq": max(seqs, default=FRESH),
        "sent": NOW_MS,
        "items": items,
    }


def announcement() -> tuple[str, bytes]:
    """The hostile gateway's status announcing a backlog past every seq the strategies draw, so the
    sequence window lets their batches in: these tests are about what is in a batch, not where."""
    return announce_message(HOSTILE_GATEWAY, FRESH + 20_000)


def baseline_message() -> tuple[str, bytes]:
    """The batch a test stores before any hostile one: conflicts are judged against it."""
    items = [reading_doc(seq, value=float(seq % 7)) for seq in BASELINE_SEQS]
    return TOPIC, msgspec.json.encode(envelope(items))


def _json(doc: Any) -> bytes:
    return msgspec.json.encode(doc)


_values = st.floats(-80, 80, allow_nan=False).map(lambda v: round(v, 2))


@st.composite
def fresh_items(draw: st.DrawFn, min_size: int = 1, max_size: int = 6) -> list[dict[str, Any]]:
    """Valid readings with increasing fresh seqs (gaps allowed: thinned batches have them)."""
    n = draw(st.integers(min_size, max_size))
    first = draw(st.integers(FRESH, FRESH + 1000))
    steps = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    seqs = [first + sum(steps[:i]) for i in range(n)]
    sensors = st.sampled_from(["cr1-t01", "cr1-t02", "dock-h1"])
    return [reading_doc(seq, draw(_values), draw(sensors)) for seq in seqs]


def _whole(label: str, payload: bytes, topic: str = TOPIC) -> Hostile:
    return Hostile(label, topic, payload)


def _one_bad_item(label: str, items: list[Any], index: int, *, certain: bool = True) -> Hostile:
    """``items[index]`` is the broken one; the envelope's range is that of the others (a broken
    seq must not make the envelope itself unsound)."""
    good = [item["seq"] for i, item in enumerate(items) if i != index]
    doc = envelope(items, seqs=good)
    # A broken *last* item leaves last_seq short of the last item's seq, which the contract forbids;
    # ingest then refuses the envelope whole (it must not trust the range), so salvage is optional.
    last = index == len(items) - 1
    return Hostile(label, TOPIC, _json(doc), good=frozenset(good), must_salvage=certain and not last)


# -- whole-message breakage ------------------------------------------------------------------------


@st.composite
def truncated(draw: st.DrawFn) -> Hostile:
    payload = _json(envelope(draw(fresh_items())))
    cut = draw(st.integers(0, len(payload) - 1))
    return _whole("truncated", payload[:cut])


@st.composite
def random_bytes(draw: st.DrawFn) -> Hostile:
    topic = draw(st.sampled_from([TOPIC, status_topic(SITE, HOSTILE_GATEWAY)]))
    return _whole("random_bytes", draw(st.binary(max_size=300)), topic)


@st.composite
def unknown_version(draw: st.DrawFn) -> Hostile:
    doc = envelope(draw(fresh_items()))
    doc["v"] = draw(
        st.integers(-(2**70), 2**70).filter(lambda v: v != 1)
        | st.sampled_from(["1", "v1", None, True, [1], {"v": 1}, 1.5, 2.0])
    )
    return _whole("unknown_version", _json(doc))


@st.composite
def spoofed(draw: st.DrawFn) -> Hostile:
    """Another gateway's (or site's) id in the payload, or its valid batch on our topic."""
    field = draw(st.sampled_from(["gateway", "site"]))
    doc = envelope(draw(fresh_items()), **{field: draw(st.sampled_from(SPOOFED_IDS))})
    return _whole(f"spoofed_{field}", _json(doc))


@st.composite
def duplicate_seqs(draw: st.DrawFn) -> Hostile:
    """One seq twice in a batch, the copy with other content: nothing in it can be trusted."""
    items = draw(fresh_items(min_size=1, max_size=5))
    index = draw(st.integers(0, len(items) - 1))
    copy = dict(items[index], value=draw(_values))
    items.insert(index + draw(st.integers(0, 1)), copy)
    return _whole("duplicate_seqs", _json(envelope(items)))


@st.composite
def huge_items(draw: st.DrawFn) -> Hostile:
    """More than MAX_BATCH_ITEMS items; cheap ones, so thousands of examples stay fast."""
    n = draw(st.integers(10_001, 10_100))
    filler = draw(st.sampled_from([b"0", b"{}", b'"x"', b"null"]))
    head = _json(envelope([reading_doc(FRESH)]))
    payload = head[: head.index(b'"items":[') + 9] + b",".join([filler] * n) + b"]}"
    return _whole("huge_items", payload)


@st.composite
def deep_nesting(draw: st.DrawFn) -> Hostile:
    depth = draw(st.integers(50, 100_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    nested = opener * depth + b"1" + closer * depth
    where = draw(st.sampled_from(["whole", "envelope", "item"]))
    if where == "whole":
        return _whole("deep_nesting", nested)
    items = draw(fresh_items())
    marker = b'"@@nested@@"'
    if where == "envelope":
        doc = envelope(items)
        doc["sent"] = "@@nested@@"
        return _whole("deep_nesting_envelope", _json(doc).replace(marker, nested))
    index = draw(st.integers(0, len(items) - 1))
    items[index]["value"] = "@@nested@@"
    hostile = _one_bad_item("deep_nesting_item", items, index, certain=False)
    return Hostile(hostile.label, hostile.topic, hostile.payload.replace(marker, nested), hostile.good, False)


@st.composite
def non_json_numbers(draw: st.DrawFn) -> Hostile:
    """NaN / Infinity tokens are not JSON; 1e999 is JSON but not a finite reading."""
    items = draw(fresh_items())
    index = draw(st.integers(0, len(items) - 1))
    token = draw(st.sampled_from([b"NaN", b"-Infinity", b"Infinity", b"nan", b"inf", b"1e999", b"-1e999"]))
    items[index]["value"] = "@@token@@"
    payload = _json(envelope(items)).replace(b'"@@token@@"', token)
    good = frozenset(item["seq"] for i, item in enumerate(items) if i != index)
    return Hostile(f"number_{token.decode()}", TOPIC, payload, good=good)


@st.composite
def invalid_utf8(draw: st.DrawFn) -> Hostile:
    bad = draw(
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
    )
    items = draw(fresh_items())
    if draw(st.booleans()):
        doc = envelope(items)
        doc["site"] = "@@bad@@"
        return _whole("invalid_utf8_envelope", _json(doc).replace(b"@@bad@@", b"s" + bad))
    index = draw(st.integers(0, len(items) - 1))
    items[index]["sensor"] = "@@bad@@"
    hostile = _one_bad_item("invalid_utf8_item", items, index, certain=False)
    return Hostile(
        hostile.label, hostile.topic, hostile.payload.replace(b"@@bad@@", b"s" + bad), hostile.good, False
    )


@st.composite
def escaped_strings(draw: st.DrawFn) -> Hostile:
    """NUL and lone-surrogate escapes in id fields (patterns forbid both; PostgreSQL cannot store NUL)."""
    escape = draw(st.sampled_from([b"\\u0000", b"\\ud800", b"\\udfff", b"\\ud800\\u0041", b"\\u0000\\u0000"]))
    items = draw(fresh_items())
    if draw(st.booleans()):
        field = draw(st.sampled_from(["site", "gateway", "stream", "boot"]))
        doc = envelope(items)
        original = doc[field]
        doc[field] = "@@esc@@"
        payload = _json(doc).replace(b"@@esc@@", original.encode() + escape)
        return _whole(f"escaped_{field}", payload)
    index = draw(st.integers(0, len(items) - 1))
    field = draw(st.sampled_from(["sensor", "boot", "kind", "quantity", "unit"]))
    original = items[index][field]
    items[index][field] = "@@esc@@"
    hostile = _one_bad_item(f"escaped_item_{field}", items, index)
    payload = hostile.payload.replace(b"@@esc@@", original.encode() + escape)
    # A lone surrogate escape is malformed JSON to msgspec, which then refuses the whole message.
    return Hostile(hostile.label, hostile.topic, payload, hostile.good, must_salvage=False)


@st.composite
def bad_topic(draw: st.DrawFn) -> Hostile:
    """A valid batch on a topic that is not a batch topic of its gateway (or not a topic at all)."""
    payload = _json(envelope(draw(fresh_items())))
    topic = draw(
        st.sampled_from(
            [
                f"coldgate/v1/{SITE}/{HOSTILE_GATEWAY}/up",
                f"coldgate/v1/{SITE}/{HOSTILE_GATEWAY}/up/batch/extra",
                f"coldgate/v1/{SITE}/{HOSTILE_GATEWAY}/up/weather",
                f"coldgate/v1/{SITE}/{HOSTILE_GATEWAY}/up/status",
                f"coldgate/v1/{SITE}/{HOSTILE_GATEWAY}/down/ack",
                f"coldgate/v1/{SITE}/{HOSTILE_GATEWAY}/down/config",
                f"coldgate/v2/{SITE}/{HOSTILE_GATEWAY}/up/batch",
                f"coldgate/v1/site 1/{HOSTILE_GATEWAY}/up/batch",
                f"coldgate/v1/{SITE}/-gw01/up/batch",
                f"coldgate/v1/{SITE}/{'g' * 65}/up/batch",
                f"coldgate/v1/{SITE}/gw02/up/batch",
                f"coldgate/v1/site2/{HOSTILE_GATEWAY}/up/batch",
                "coldgate/v1//gw01/up/batch",
                "somewhere/else",
                "/",
            ]
        )
        | st.text(st.characters(exclude_characters="\x00+#"), min_size=1, max_size=40)
    )
    return _whole("bad_topic", payload, topic)


# -- one bad item in a sound envelope ---------------------------------------------------------------

_WRONG_FOR: dict[type, st.SearchStrategy[Any]] = {
    str: st.sampled_from([12345, 0, True, None, [], {"a": 1}, ["x"]]),
    int: st.sampled_from(["12", "", 1.5, -0.5, True, False, None, [], {}, [1]]),
    float: st.sampled_from(["4.5", "warm", True, None, [], {"v": 4.5}]),
    bool: st.sampled_from([1, 0, "true", None, [], {}]),
    list: st.sampled_from([[], "items", 1, None, {}, {"0": {}}]),
}
_OUT_OF_RANGE: dict[str, list[int]] = {
    "seq": [0, -1, 2**63, 2**70, -(2**70)],
    "ts": [-1, 253_402_300_800_000, 2**70],
    "mono": [-1, 2**63, 2**70],
}


@st.composite
def wrong_type(draw: st.DrawFn) -> Hostile:
    """A field replaced by a value of a type it can never have, in the envelope or in one item."""
    items = draw(fresh_items())
    huge = st.integers(10_001, 10_050).map(lambda n: [0] * n)
    if draw(st.integers(0, 3)) == 0:
        doc = envelope(items)
        field = draw(st.sampled_from(sorted(doc)))
        doc[field] = draw(huge) if draw(st.integers(0, 9)) == 0 else draw(_WRONG_FOR[type(doc[field])])
        return _whole(f"wrong_type_envelope_{field}", _json(doc))
    index = draw(st.integers(0, len(items) - 1))
    field = draw(st.sampled_from(sorted(items[index])))
    original = items[index][field]
    replacement = draw(huge) if draw(st.integers(0, 9)) == 0 else draw(_WRONG_FOR[type(original)])
    items[index][field] = replacement
    return _one_bad_item(f"wrong_type_item_{field}", items, index)


@st.composite
def out_of_range(draw: st.DrawFn) -> Hostile:
    items = draw(fresh_items())
    if draw(st.booleans()):
        doc = envelope(items)
        field = draw(st.sampled_from(["first_seq", "last_seq", "sent"]))
        doc[field] = draw(st.sampled_from(_OUT_OF_RANGE["ts" if field == "sent" else "seq"]))
        return _whole(f"out_of_range_{field}", _json(doc))
    index = draw(st.integers(0, len(items) - 1))
    field = draw(st.sampled_from(sorted(_OUT_OF_RANGE)))
    items[index][field] = draw(st.sampled_from(_OUT_OF_RANGE[field]))
    return _one_bad_item(f"out_of_range_item_{field}", items, index)


@st.composite
def unknown_kind(draw: st.DrawFn) -> Hostile:
    items = draw(fresh_items())
    index = draw(st.integers(0, len(items) - 1))
    known = {"reading", "gap", "alert", "movement", "scan", "excursion"}
    items[index]["kind"] = draw(st.text(max_size=12).filter(lambda k: k not in known))
    return _one_bad_item("unknown_kind", items, index)


@st.composite
def bad_field_values(draw: st.DrawFn) -> Hostile:
    """Right types, wrong values: unknown enum members, an id off its pattern, a unit of another quantity."""
    items = draw(fresh_items())
    index = draw(st.integers(0, len(items) - 1))
    field, value = draw(
        st.sampled_from(
            [
                ("quantity", "temperature "),
                ("quantity", "weather"),
                ("unit", "KMH"),
                ("unit", "PAL"),  # a pressure unit on a temperature
                ("quality", "great"),
                ("sensor", ""),
                ("sensor", "a/b"),
                ("sensor", "s" * 65),
                ("boot", "XYZ"),
                ("extra", 1),  # unknown fields are forbidden
            ]
        )
    )
    items[index][field] = value
    return _one_bad_item(f"bad_value_{field}", items, index)


# -- the same key with other content ----------------------------------------------------------------


@st.composite
def conflicting(draw: st.DrawFn) -> Hostile:
    """Stored seqs sent again, some with other content: each changed one is a conflict."""
    first = draw(st.integers(BASELINE_SEQS[0], BASELINE_SEQS[-1]))
    last = draw(st.integers(first, min(first + 5, BASELINE_SEQS[-1])))
    items = [reading_doc(seq, value=float(seq % 7)) for seq in range(first, last + 1)]
    changed = draw(st.sets(st.integers(first, last), min_size=1))
    for item in items:
        if item["seq"] in changed:
            how = draw(st.sampled_from(["value", "sensor", "ts", "synced"]))
            if how == "value":
                item["value"] = float(item["seq"] % 7) + draw(st.sampled_from([0.5, -1.0, 100.0]))
            elif how == "sensor":
                item["sensor"] = "cr9-t99"
            elif how == "ts":
                item["ts"] += draw(st.integers(1, 10_000))
            else:
                item["synced"] = False
    return Hostile("conflict", TOPIC, _json(envelope(items)), conflicts=frozenset(changed))


def hostile() -> st.SearchStrategy[Hostile]:
    """Any hostile message: every one must be dead-lettered (wholly or item by item)."""
    return st.one_of(
        truncated(),
        random_bytes(),
        unknown_version(),
        spoofed(),
        duplicate_seqs(),
        huge_items(),
        deep_nesting(),
        non_json_numbers(),
        invalid_utf8(),
        escaped_strings(),
        bad_topic(),
        wrong_type(),
        out_of_range(),
        unknown_kind(),
        bad_field_values(),
        conflicting(),
    )


def nul_in_free_text(seq: int, gateway: str) -> tuple[str, bytes]:
    """A reading whose ``reason`` holds a NUL: valid JSON and valid contract, but PostgreSQL's
    text type cannot hold it, so the database itself refuses the message."""
    item = reading_doc(seq) | {"quality": "suspect", "reason": "stuck\u0000value"}
    return batch_topic(SITE, gateway), _json(envelope([item], gateway=gateway))
