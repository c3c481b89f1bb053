"""Reading request bodies safely: size limits before and after gzip, JSON or NDJSON decoding."""

from __future__ import annotations

import zlib
from typing import Any

import msgspec
from starlette.requests import Request

from meterd.core.errors import FieldError, InvalidInput, PayloadTooLarge, UnsupportedMediaType

_decoder = msgspec.json.Decoder()


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip_limited(data: bytes, limit: int) -> bytes:
    """Decompress gzip (or zlib) data, refusing (413) output over ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=47)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise InvalidInput("the body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body is over {limit} bytes")
    return out


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed when ``Content-Encoding`` says gzip, within ``limit`` bytes."""
    data = await read_limited(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return gunzip_limited(data, limit)
    if encoding not in ("identity", ""):
        raise UnsupportedMediaType(f"content encoding {encoding!r} is not supported; use gzip")
    return data


def decode_json(data: bytes) -> Any:
    """Parse JSON text; malformed JSON is invalid input with the position of the problem."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidInput("the body is not valid JSON", [FieldError("", str(exc))]) from None


def decode_ndjson(data: bytes) -> list[Any]:
    """Parse newline-delimited JSON; a bad line fails with its line number."""
    records: list[Any] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            try:
                records.append(_decoder.decode(line))
            except msgspec.DecodeError as exc:
                raise InvalidInput("the body is not valid NDJSON", [FieldError(f"line {number}", str(exc))]) from None
    return records


def decode_records(request: Request, data: bytes) -> list[Any]:
    """A JSON object, a JSON array or NDJSON, by content type, as a list of records."""
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype in ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq"):
        return decode_ndjson(data)
    if ctype not in ("application/json", "text/json", "", "text/plain") and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"content type {ctype!r} is not supported; send JSON or NDJSON")
    parsed = decode_json(data)
    return parsed if isinstance(parsed, list) else [parsed]
