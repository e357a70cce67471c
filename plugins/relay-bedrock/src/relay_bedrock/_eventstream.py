"""AWS's binary event stream (``application/vnd.amazon.eventstream``), decoded.

A small decoder of our own rather than ``botocore.eventstream``: a call authenticated
with a Bedrock API key needs no botocore at all, and the format is short and stable
(every message is a prelude of two lengths with a CRC32, headers, a payload, and a CRC32
of the whole). Both CRCs are checked: a corrupt frame is a :class:`MalformedResponse`,
never a wrong answer. The tests check this decoder against botocore's on the same bytes.

One message::

    total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers: name length (u8) | name | type (u8) | value ...
    payload
    message CRC32 (u32)
"""

from __future__ import annotations

import struct
import uuid
import zlib
from typing import Any

from attrs import field, frozen

from relay_core.plugin import MalformedResponse

__all__ = ["EventStreamDecoder", "EventStreamMessage", "encode_message"]

_PRELUDE = struct.Struct(">III")
_CRC = struct.Struct(">I")
# The limits AWS documents for one message: 16 MiB of payload, 128 KiB of headers.
_MAX_PAYLOAD = 16 * 1024 * 1024
_MAX_HEADERS = 128 * 1024
_MIN_MESSAGE = _PRELUDE.size + _CRC.size


@frozen
class EventStreamMessage:
    """One decoded message: its headers (``:event-type``, ``:message-type``...) and the
    payload bytes (JSON for Bedrock)."""

    headers: dict[str, Any] = field(factory=dict)
    payload: bytes = b""

    @property
    def kind(self) -> str:
        """``event``, ``exception`` or ``error`` (the ``:message-type`` header)."""
        return str(self.headers.get(":message-type", "event"))

    @property
    def name(self) -> str:
        """The event or exception type (``contentBlockDelta``, ``throttlingException``)."""
        key = ":exception-type" if self.kind == "exception" else ":event-type"
        return str(self.headers.get(key, self.headers.get(":error-code", "")))


class EventStreamDecoder:
    """Feed it bytes as they arrive; it returns the whole messages they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[EventStreamMessage]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= _PRELUDE.size:
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise MalformedResponse("event stream prelude fails its CRC check")
            if (
                total < _MIN_MESSAGE + headers_length
                or headers_length > _MAX_HEADERS
                or total - _MIN_MESSAGE - headers_length > _MAX_PAYLOAD
            ):
                raise MalformedResponse(f"event stream message of impossible length {total}")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = _CRC.unpack_from(frame, total - _CRC.size)
            if zlib.crc32(frame[: total - _CRC.size]) != message_crc:
                raise MalformedResponse("event stream message fails its CRC check")
            start = _PRELUDE.size
            headers = _headers(frame[start : start + headers_length])
            messages.append(
                EventStreamMessage(headers, frame[start + headers_length : total - _CRC.size])
            )
        return messages

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished message are left: a stream cut mid-message."""
        return bool(self._buffer)


def _headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    at = 0
    try:
        while at < len(data):
            size = data[at]
            name = data[at + 1 : at + 1 + size].decode("utf-8")
            at += 1 + size
            kind = data[at]
            at += 1
            if kind in (0, 1):
                value: Any = kind == 0
            elif kind in _FIXED:
                fmt = _FIXED[kind]
                (value,) = struct.unpack_from(fmt, data, at)
                at += struct.calcsize(fmt)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, at)
                raw = data[at + 2 : at + 2 + length]
                value = raw.decode("utf-8") if kind == 7 else raw
                at += 2 + length
            elif kind == 9:
                value = uuid.UUID(bytes=data[at : at + 16])
                at += 16
            else:
                raise MalformedResponse(f"event stream header of unknown type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as error:
        raise MalformedResponse(f"event stream headers cannot be read: {error}") from error
    return headers


_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}  # byte, short, int, long, timestamp


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message with string headers: what Bedrock sends, for tests and cassettes."""
    encoded = b""
    for name, value in headers.items():
        key, text = name.encode(), value.encode()
        encoded += bytes([len(key)]) + key + b"\x07" + struct.pack(">H", len(text)) + text
    total = _MIN_MESSAGE + len(encoded) + len(payload)
    prelude = struct.pack(">II", total, len(encoded))
    prelude += _CRC.pack(zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + _CRC.pack(zlib.crc32(body))
