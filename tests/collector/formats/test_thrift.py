from __future__ import annotations

import random
from typing import Any

import pytest
from jaeger_client.thrift_gen.jaeger import ttypes
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport import TTransport

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.thrift import (
    TType,
    read_binary_message,
    read_binary_struct,
    read_binary_value,
    read_compact_message,
    read_compact_struct,
)
from tests.collector.formats.thrift_write import (
    TypedStruct,
    write_binary_message,
    write_binary_struct,
    write_binary_value,
    write_compact_message,
    write_compact_struct,
)

PROTOCOLS = {"binary": TBinaryProtocol.TBinaryProtocol, "compact": TCompactProtocol.TCompactProtocol}
READ = {"binary": read_binary_struct, "compact": read_compact_struct}
WRITE = {"binary": write_binary_struct, "compact": write_compact_struct}


def apache_bytes(protocol: str, obj: Any) -> bytes:
    buffer = TTransport.TMemoryBuffer()
    obj.write(PROTOCOLS[protocol](buffer))
    return bytes(buffer.getvalue())


def apache_read(protocol: str, data: bytes, obj: Any) -> Any:
    obj.read(PROTOCOLS[protocol](TTransport.TMemoryBuffer(data)))
    return obj


def sample_batch(spans: int = 20) -> ttypes.Batch:
    tags = [ttypes.Tag(key="s", vType=ttypes.TagType.STRING, vStr="é"),
            ttypes.Tag(key="d", vType=ttypes.TagType.DOUBLE, vDouble=-1.25),
            ttypes.Tag(key="b", vType=ttypes.TagType.BOOL, vBool=False),
            ttypes.Tag(key="l", vType=ttypes.TagType.LONG, vLong=-(2**63))]
    span = ttypes.Span(traceIdLow=-1, traceIdHigh=2**63 - 1, spanId=5, parentSpanId=0, operationName="op",
                       flags=1, startTime=1, duration=2, tags=tags,
                       logs=[ttypes.Log(timestamp=3, fields=tags)])
    return ttypes.Batch(process=ttypes.Process(serviceName="svc", tags=tags), spans=[span] * spans)


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_reads_what_apache_thrift_writes(protocol: str) -> None:
    batch = READ[protocol](apache_bytes(protocol, sample_batch()))
    assert batch[1][1] == b"svc"
    assert len(batch[2]) == 20  # a compact list header beyond 14 elements
    span = batch[2][0]
    assert (span[1], span[2], span[5]) == (-1, 2**63 - 1, b"op")
    assert [t[1] for t in span[10]] == [b"s", b"d", b"b", b"l"]
    assert span[10][0][3].decode() == "é" and span[10][1][4] == -1.25 and span[10][2][5] is False
    assert span[10][3][6] == -(2**63)


TYPED: TypedStruct = {
    1: (TType.STRUCT, {1: (TType.STRING, "svc"),
                       2: (TType.LIST, (TType.STRUCT, [{1: (TType.STRING, "k"), 2: (TType.I32, 2),
                                                         5: (TType.BOOL, True)}] * 16))}),
    2: (TType.LIST, (TType.STRUCT, [{1: (TType.I64, -(2**40)), 2: (TType.I64, 0), 3: (TType.I64, 1),
                                     4: (TType.I64, 0), 5: (TType.STRING, "op"), 7: (TType.I32, 1),
                                     8: (TType.I64, 0), 9: (TType.I64, 0)}])),
}


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_apache_thrift_reads_what_we_write(protocol: str) -> None:
    batch = apache_read(protocol, WRITE[protocol](TYPED), ttypes.Batch())
    assert batch.process.serviceName == "svc"
    assert len(batch.process.tags) == 16 and batch.process.tags[15].vBool is True
    assert [(s.traceIdLow, s.operationName) for s in batch.spans] == [(-(2**40), "op")]


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_containers_bools_and_large_field_ids_round_trip(protocol: str) -> None:
    typed: TypedStruct = {
        1: (TType.BOOL, False), 2: (TType.BYTE, -3), 3: (TType.I16, -300), 40: (TType.DOUBLE, 0.5),
        100: (TType.MAP, (TType.STRING, TType.LIST, {"a": (TType.BOOL, [True, False])})),
        200: (TType.SET, (TType.I32, [1, -2])), 201: (TType.MAP, (TType.I32, TType.I32, {})),
    }
    assert READ[protocol](WRITE[protocol](typed)) == {
        1: False, 2: -3, 3: -300, 40: 0.5, 100: {b"a": [True, False]}, 200: [1, -2], 201: {}}


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_messages_round_trip_with_apache_thrift(protocol: str) -> None:
    write = write_binary_message if protocol == "binary" else write_compact_message
    read = read_binary_message if protocol == "binary" else read_compact_message
    data = write("emitBatch", TMessageType.ONEWAY, 9, {1: (TType.STRUCT, TYPED)})
    reader = PROTOCOLS[protocol](TTransport.TMemoryBuffer(data))
    assert reader.readMessageBegin() == ("emitBatch", TMessageType.ONEWAY, 9)
    message = read(data)
    assert (message.name, message.type, message.seqid) == ("emitBatch", TMessageType.ONEWAY, 9)
    assert message.args[1][1][1] == b"svc"


def test_old_non_strict_binary_message_is_read() -> None:
    buffer = TTransport.TMemoryBuffer()
    writer = TBinaryProtocol.TBinaryProtocol(buffer, strictWrite=False)
    writer.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 3)
    sample_batch().write(writer)  # as if it were the args struct
    message = read_binary_message(buffer.getvalue())
    assert (message.name, message.seqid, message.args[1][1]) == ("emitBatch", 3, b"svc")


def test_bare_list_value_reads_as_zipkin_v1_bodies_are_sent() -> None:
    body = write_binary_value(TType.LIST, (TType.STRUCT, [{1: (TType.I64, 1)}, {1: (TType.I64, -2)}]))
    assert read_binary_value(body, TType.LIST) == [{1: 1}, {1: -2}]


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_random_garbage_only_ever_raises_format_error(protocol: str) -> None:
    rng = random.Random(1234)
    valid = apache_bytes(protocol, sample_batch(spans=2))
    for _ in range(1500):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        else:  # a valid payload with a few bytes flipped: deeper into the parser
            mutable = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
            data = bytes(mutable)
        try:
            READ[protocol](data)
        except FormatError:
            pass


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([TType.STRING]) + b"\x00\x01" + b"\x7f\xff\xff\xff", "string size"),
        (bytes([TType.LIST]) + b"\x00\x01" + bytes([TType.I64]) + b"\x10\x00\x00\x00", "list size"),
        (bytes([TType.STRING]) + b"\x00\x01" + b"\xff\xff\xff\xff", "string size -1"),
        (bytes([99]) + b"\x00\x01", "unknown field type 99"),
        (b"", "truncated"),
    ],
)
def test_forged_sizes_and_types_are_refused_before_allocating(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read_binary_struct(data)


def test_compact_varint_longer_than_ten_bytes_is_refused() -> None:
    with pytest.raises(FormatError, match="varint"):
        read_compact_struct(bytes([0x16]) + b"\xff" * 11)
