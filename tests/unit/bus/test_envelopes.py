"""Envelopes (services/bus/envelopes.py): encode/decode, packing by partition, the
partitioner's agreement with Kafka's, and what is not an envelope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner

import schemas
from services.bus.envelopes import (
    MAX_RECORDS,
    EnvelopeError,
    decode,
    encode,
    pack,
    partition_for,
)

#: Integers orjson parses as integers (beyond 64 bits it gives a float; a known limit).
INTEGERS = st.integers(-(2**63), 2**64 - 1)
JSON = st.recursive(
    st.none() | st.booleans() | INTEGERS | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
PERSONS = st.text(min_size=1, max_size=40)
RECORDS = st.lists(
    st.fixed_dictionaries({"person": PERSONS}, optional={"x": JSON, "y": JSON}),
    min_size=1,
    max_size=30,
)
#: murmur2 of these keys in the Java client (Kafka's UtilsTest), as signed 32-bit ints.
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


class Topic:
    """The cluster metadata the default partitioner reads: one topic, all partitions up."""

    def __init__(self, partitions: int):
        self.ids = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, _: str) -> set[int]:
        return self.ids

    def available_partitions_for_topic(self, _: str) -> set[int]:
        return self.ids


@given(RECORDS)
def test_decode_gives_back_the_records_encoded(records):
    value = encode(records)
    assert decode(value) == records
    assert schemas.errors_of("envelope.v1", json.loads(value)) is None


def test_what_orjson_cannot_encode_goes_through_the_standard_library():
    records = [{"person": "p", "lone": "\ud800", "n": 2**64 - 1}]
    assert decode(encode(records)) == records


@given(PERSONS, st.integers(1, 1000))
def test_the_partition_is_the_one_kafkas_default_partitioner_picks(person, partitions):
    kafka = DefaultPartitioner().partition(
        "t", person, person.encode(), None, None, Topic(partitions)
    )
    assert partition_for(person, partitions) == kafka


@pytest.mark.parametrize("key", list(JAVA_MURMUR2))
@pytest.mark.parametrize("partitions", [1, 3, 12, 100])
def test_the_partition_is_the_one_the_java_client_picks(key, partitions):
    assert partition_for(key, partitions) == (JAVA_MURMUR2[key] & 0x7FFFFFFF) % partitions


@settings(max_examples=50)
@given(RECORDS, st.integers(1, 8))
def test_pack_keeps_every_record_in_its_persons_partition_and_order(records, partitions):
    envelopes = list(pack(records, partitions))
    unpacked: list[dict[str, Any]] = []
    for envelope in envelopes:
        inside = decode(envelope.value)
        assert envelope.count == len(inside) <= MAX_RECORDS
        assert envelope.key == inside[0]["person"].encode()
        assert {partition_for(r["person"], partitions) for r in inside} == {envelope.partition}
        unpacked += inside
    assert sorted(map(repr, unpacked)) == sorted(map(repr, records))
    for person in {r["person"] for r in records}:
        assert [r for r in unpacked if r["person"] == person] == [
            r for r in records if r["person"] == person
        ]


def test_a_partitions_records_are_split_into_envelopes_of_at_most_max_records():
    records = [{"person": "p1", "n": i} for i in range(2 * MAX_RECORDS + 1)]
    envelopes = list(pack(records, 4))
    assert [e.count for e in envelopes] == [MAX_RECORDS, MAX_RECORDS, 1]
    assert [r["n"] for e in envelopes for r in decode(e.value)] == list(range(len(records)))


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\xff\xfe\x00",
        b"not json",
        b"[]",
        b'"text"',
        b'{"records":[{}]}',
        b'{"v":2,"records":[{}]}',
        b'{"v":true,"records":[{}]}',
        b'{"v":1}',
        b'{"v":1,"records":[]}',
        b'{"v":1,"records":{}}',
        b'{"v":1,"records":[{}]',
    ],
)
def test_what_is_not_an_envelope_raises_the_envelope_error(value):
    with pytest.raises(EnvelopeError):
        decode(value)


@pytest.mark.parametrize("depth", [1100, 100_000])
def test_a_message_too_deep_to_parse_is_not_an_envelope_not_a_crash(depth):
    value = b'{"v":1,"records":[' + b"[" * depth + b"]" * depth + b"]}"
    with pytest.raises(EnvelopeError, match="^not JSON"):
        decode(value)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_records_or_the_envelope_error(value):
    try:
        records = decode(value)
    except EnvelopeError:
        return
    assert isinstance(records, list) and records


def test_what_json_loads_accepts_is_accepted():
    """orjson is stricter than the standard library on NaN; the envelope is not."""
    records = decode(b'{"v":1,"records":[{"x":NaN}]}')
    assert records[0]["x"] != records[0]["x"]
