"""Response bodies: what a status, start or STS answer decodes into, or the error it raises.

A JSON object (the API's answer) becomes a :class:`Response`; an error answer (HTTP 4xx/5xx, a
JSON body with ``Success: false``, or an XML ``<Error>`` body as some gateways send) becomes the
package's exception through :func:`airflow_aliyun_tasks.errors.map_error`; anything else is a
:class:`~airflow_aliyun_tasks.errors.BadResponseError`. Pure functions of status, headers and
bytes: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from airflow_aliyun_tasks._transport.shared import RawResponse
from airflow_aliyun_tasks.errors import BadResponseError, first_field, header_request_id, map_error

__all__ = ["Response", "decode"]


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded answer: HTTP status and headers, the JSON object, the request id.

    ``wire`` is the response as the transport gave it; :attr:`headers` are made from it on first
    read (see :class:`~._transport.RawResponse`)."""

    wire: RawResponse = field(repr=False)
    body: dict[str, Any]
    request_id: str | None = None

    @property
    def status(self) -> int:
        return self.wire.status

    @property
    def headers(self) -> httpx.Headers:
        return self.wire.headers


def _loads(raw: bytes) -> Any:
    """``json.loads`` of the body decoded as UTF-8 with replacement; None if it is not JSON."""
    # Fast path: a body that starts with "{" and whose second byte is not NUL is read as
    # UTF-8 by json.loads(bytes) too; if it is not valid UTF-8, the replacing decode decides.
    if raw[:1] == b"{" and len(raw) > 1 and raw[1]:
        try:
            return json.loads(raw)
        except UnicodeDecodeError:
            pass
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a status
            return None
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None


def _xml_error(raw: bytes) -> dict[str, str] | None:
    """The fields of an XML error body (``<Error><Code>..</Code><Message>..</Message>...``), as
    the official SDK reads one; None if it is not one. No DTDs (no entity expansion)."""
    text = raw.lstrip()
    if not text.startswith(b"<") or b"<!DOCTYPE" in text[:4096].upper() or b"<!ENTITY" in text.upper():
        return None
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD or entity (refused above), at most 1 MiB
    except (ET.ParseError, ValueError):
        return None
    node = root if root.tag == "Error" else root.find("Error")
    if node is None:
        node = root
    fields = {child.tag: (child.text or "").strip() for child in node if len(child) == 0}
    return fields if any(k in fields for k in ("Code", "Message", "RequestId")) else None


def decode(response: RawResponse, *, now: float, empty_ok: bool = False) -> Response:
    """The :class:`Response` of an answer, or the exception it means. ``now`` (epoch seconds,
    the local clock) measures the server's clock offset on a clock-skew error. ``empty_ok``:
    an empty 2xx body is an answer (``{}``), for an operation that answers without one.
    The headers are read only when the answer needs them (an error, no request id in the body)."""
    status, raw = response.status, response.body
    if empty_ok and 200 <= status < 300 and not raw.strip():
        return Response(response, {}, header_request_id(response.headers))
    parsed = _loads(raw)
    obj = parsed if isinstance(parsed, dict) else None
    if obj is None and status >= 400 and "xml" in response.headers.get("content-type", "").lower():
        obj = _xml_error(raw)
    if status >= 400:
        text = "" if obj is not None else raw.decode("utf-8", errors="replace")
        raise map_error(status, response.headers, obj, text, now=now)
    if obj is None:
        what = "is not a JSON object" if raw.strip() else "is empty"
        headers = response.headers
        raise BadResponseError(
            f"response body {what} (content type {headers.get('content-type', 'none')})",
            http_status=status,
            request_id=header_request_id(headers),
        )
    if obj.get("Success") is False or obj.get("success") is False:
        # DLF reports some errors inside an HTTP 200 body.
        raise map_error(status, response.headers, obj, now=now)
    request_id = first_field(obj, "RequestId", "requestId") or header_request_id(response.headers)
    return Response(response, obj, request_id)
