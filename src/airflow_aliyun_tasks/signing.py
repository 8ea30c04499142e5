"""Request signing for Alibaba Cloud: pure functions, no I/O, no clock.

Date and nonce are inputs, so every function here is deterministic and testable against
published vectors and the official signer.

- ACS3-HMAC-SHA256 (the "V3" signature) for DLF, DataWorks, MaxCompute MMA and STS.
- PDS's ``acs <AccessKeyId>:<signature>`` HMAC-SHA1 ("v1" of ``alibabacloud-gateway-pds``).
- PDS Bearer access tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: unreserved characters kept, everything else ``%XX`` (UTF-8)."""
    return quote(value, safe="-_.~")


def encode_path(path: str) -> str:
    """Encode each segment of a ROA path, keeping ``/``; an empty path is ``/``."""
    if not path:
        return "/"
    return quote(path, safe="/-_.~")


def canonical_query(query: Mapping[str, str | None] | None) -> str:
    """Sorted ``enc(name)=enc(value)`` pairs joined by ``&``; ``None`` values dropped.

    The same string is used as the query on the wire, so signer and server see the same bytes.
    """
    if not query:
        return ""
    items = sorted((k, v) for k, v in query.items() if v is not None)
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in items)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_acs_date(epoch_seconds: float) -> str:
    """``x-acs-date`` form: UTC ``%Y-%m-%dT%H:%M:%SZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def format_http_date(epoch_seconds: float) -> str:
    """RFC 1123 GMT date, as PDS's ``date`` header wants it."""
    return formatdate(epoch_seconds, usegmt=True)


@dataclass(frozen=True)
class Acs3Signature:
    authorization: str
    signed_headers: str
    canonical_request: str
    string_to_sign: str
    signature: str


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers.items():
        grouped.setdefault(name.lower().strip(), []).append(str(value).strip())
    names = sorted(grouped)
    lines = "".join(f"{n}:{','.join(sorted(grouped[n]))}\n" for n in names)
    return lines, ";".join(names)


def sign_acs3(
    *,
    method: str,
    pathname: str,
    query: Mapping[str, str | None] | None,
    headers: Mapping[str, str],
    payload_hash: str,
    access_key_id: str,
    access_key_secret: str,
) -> Acs3Signature:
    """Sign with ACS3-HMAC-SHA256 over exactly the ``headers`` given.

    ``headers`` are the headers to sign (``host`` and every ``x-acs-*``, plus ``content-type``
    when there is a body); ``payload_hash`` is the lowercase hex SHA-256 of the body.
    """
    canon_headers, signed_headers = _canonical_headers(headers)
    canonical_request = "\n".join(
        (
            method.upper(),
            encode_path(pathname),
            canonical_query(query),
            canon_headers,
            signed_headers,
            payload_hash,
        )
    )
    string_to_sign = f"{ACS3_ALGORITHM}\n{sha256_hex(canonical_request.encode('utf-8'))}"
    signature = hmac.new(
        access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    authorization = (
        f"{ACS3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
    return Acs3Signature(authorization, signed_headers, canonical_request, string_to_sign, signature)


def acs3_headers(
    *,
    method: str,
    host: str,
    pathname: str,
    query: Mapping[str, str | None] | None,
    action: str,
    version: str,
    body: bytes,
    content_type: str | None,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    date: str,
    nonce: str,
) -> dict[str, str]:
    """All headers of one ACS3-signed request, ``authorization`` included.

    Signs ``host``, every ``x-acs-*`` header and ``content-type`` when there is a body.
    ``date`` is ``x-acs-date`` (see :func:`format_acs_date`); ``nonce`` must be new per attempt.
    """
    payload_hash = sha256_hex(body)
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": payload_hash,
    }
    if content_type and body:
        headers["content-type"] = content_type
    if security_token:
        headers["x-acs-accesskey-id"] = access_key_id
        headers["x-acs-security-token"] = security_token
    sig = sign_acs3(
        method=method,
        pathname=pathname,
        query=query,
        headers=headers,
        payload_hash=payload_hash,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
    )
    headers["authorization"] = sig.authorization
    return headers


def pds_string_to_sign(
    *,
    method: str,
    pathname: str,
    query: Mapping[str, str | None] | None,
    headers: Mapping[str, str],
) -> str:
    """PDS v1 (ROA HMAC-SHA1) string to sign, as ``alibabacloud-gateway-pds`` builds it.

    ``METHOD\\nAccept\\nContent-MD5\\nContent-Type\\nDate\\n`` + sorted lowercased ``x-acs-*``
    headers as ``name:value\\n`` + the resource (path, then ``?`` and the sorted query, values
    not encoded, an empty value giving a bare name).
    """
    lower = {k.lower(): str(v) for k, v in headers.items()}
    parts = [
        method.upper(),
        lower.get("accept", ""),
        lower.get("content-md5", ""),
        lower.get("content-type", ""),
        lower.get("date", ""),
    ]
    acs = sorted((k, v.strip()) for k, v in lower.items() if k.startswith("x-acs-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in acs)
    resource = pathname
    if query:
        pairs = []
        for k in sorted(query):
            v = query[k]
            if v is None:
                continue
            pairs.append(f"{k}={v}" if v != "" else k)
        if pairs:
            resource += "?" + "&".join(pairs)
    return "\n".join(parts) + "\n" + canonical_headers + resource


def sign_pds(
    *,
    method: str,
    pathname: str,
    query: Mapping[str, str | None] | None,
    headers: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
) -> tuple[str, str]:
    """Return ``(authorization, string_to_sign)`` for a PDS v1-signed request."""
    string_to_sign = pds_string_to_sign(method=method, pathname=pathname, query=query, headers=headers)
    digest = hmac.new(
        access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1
    ).digest()
    return f"acs {access_key_id}:{base64.b64encode(digest).decode('ascii')}", string_to_sign


def pds_headers(
    *,
    method: str,
    host: str,
    pathname: str,
    query: Mapping[str, str | None] | None,
    action: str,
    version: str,
    content_type: str | None,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    date: str,
    nonce: str,
) -> dict[str, str]:
    """All headers of one PDS v1-signed request; ``date`` is RFC 1123 (:func:`format_http_date`)."""
    headers = {
        "host": host,
        "date": date,
        "accept": "application/json",
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-signature-method": "HMAC-SHA1",
        "x-acs-signature-version": "1.0",
        "x-acs-signature-nonce": nonce,
    }
    if content_type:
        headers["content-type"] = content_type
    if security_token:
        headers["x-acs-security-token"] = security_token
    authorization, _ = sign_pds(
        method=method,
        pathname=pathname,
        query=query,
        headers=headers,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
    )
    headers["authorization"] = authorization
    return headers


def bearer_headers(token: str) -> dict[str, str]:
    """Headers that authenticate a PDS request with a user access token."""
    return {"authorization": f"Bearer {token}", "x-acs-bearer-token": token}
