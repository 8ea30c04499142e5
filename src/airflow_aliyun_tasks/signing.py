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
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

__all__ = [
    "ACS3_ALGORITHM",
    "EMPTY_SHA256",
    "HEADER_MARKS",
    "JSON_CONTENT_TYPE",
    "Acs3Request",
    "Acs3Signature",
    "PreparedAcs3Signer",
    "PreparedPdsSigner",
    "SignedRequest",
    "acs3_headers",
    "bearer_headers",
    "canonical_query",
    "dates",
    "encode_path",
    "format_acs_date",
    "format_http_date",
    "pds_headers",
    "pds_string_to_sign",
    "percent_encode",
    "sha256_hex",
    "sign_acs3",
    "sign_pds",
]

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


# --------------------------------------------------------------------------- precomputed signers
#
# A status poll sends the same request again and again: only the date and the nonce change.
# The prepared signers below build everything else once, from the public functions above
# called with placeholders in place of date and nonce, so that their headers are byte-identical
# to ``acs3_headers`` / ``pds_headers`` by construction (and tests compare them on random
# requests). Should the placeholders not cut the text as expected, they fall back to those
# functions.
# A triggerer holds one per wait, so what calls have in common (the header template, the HMAC
# key schedule, the tail of the canonical request) is shared between them.

_DATE_MARK = "\x00date\x00"
_NONCE_MARK = "\x00nonce\x00"
#: The placeholders of :meth:`PreparedAcs3Signer.marked_headers`: where the date, the nonce and
#: the ``Authorization`` value of each request go.
HEADER_MARKS = (_DATE_MARK, _NONCE_MARK, "\x00authorization\x00")
_SHARED_MAX = 1024
# Cache: what prepared signers share. Keyed on the signer kind and its header template's items,
# or on ("hmac", digest, SHA-256 of the secret) for an HMAC key schedule; emptied whole when it
# reaches _SHARED_MAX entries (signers keep what they were given).
_shared: dict[tuple[object, ...], object] = {}


def _share(key: tuple[object, ...], value: object) -> object:
    """One object for equal ``key`` s (templates, strings, HMAC key schedules), bounded."""
    found = _shared.get(key)
    if found is not None:
        return found
    if len(_shared) >= _SHARED_MAX:
        _shared.clear()
    _shared[key] = value
    return value


def _shared_mac(secret: str, digest: str) -> hmac.HMAC:
    """The keyed HMAC state of ``secret``, to ``copy()`` per message (keyed by a hash of it)."""
    key = ("hmac", digest, hashlib.sha256(secret.encode("utf-8")).digest())
    found = _shared.get(key)
    if found is None:
        found = _share(key, hmac.new(secret.encode("utf-8"), digestmod=digest))
    return found  # type: ignore[return-value]


def _split_marks(text: str) -> tuple[str, str, str] | None:
    """``text`` cut around the date and nonce marks (date first); None if not exactly once each."""
    if text.count(_DATE_MARK) != 1 or text.count(_NONCE_MARK) != 1:
        return None
    head, rest = text.split(_DATE_MARK)
    if _NONCE_MARK in head:
        return None
    mid, tail = rest.split(_NONCE_MARK)
    return head, sys.intern(mid), sys.intern(tail)


class SignedRequest(TypedDict):
    """What a prepared signer is made for: one request and one key."""

    method: str
    host: str
    pathname: str
    query: Mapping[str, str | None] | None
    action: str
    version: str
    content_type: str | None
    access_key_id: str
    access_key_secret: str
    security_token: str | None


class Acs3Request(SignedRequest):
    """ACS3 signs the body too."""

    body: bytes


def _request_kwargs(request: Mapping[str, Any]) -> dict[str, Any]:
    """The signer's arguments, the query copied (the prepared signer keeps them)."""
    kwargs = dict(request)
    kwargs["query"] = dict(request["query"]) if request["query"] is not None else None
    return kwargs


class _PreparedSigner:
    """What both prepared signers keep: the headers signed with placeholders for the date and
    the nonce (the template), the text to sign cut around those placeholders, the HMAC key
    schedule, and the ``Authorization`` value up to the signature. Where the placeholders do not
    cut the text as expected, :meth:`headers` falls back to the plain signer."""

    __slots__ = ("_auth_prefix", "_fallback", "_head", "_mac", "_mid", "_tail", "_template")

    def _prepare(
        self,
        kind: str,
        kwargs: dict[str, Any],
        marked: dict[str, str],
        to_sign: str,
        digest: str,
        auth_prefix: str,
    ) -> None:
        self._template: dict[str, str] = _share((kind, *marked.items()), marked)  # type: ignore[assignment]
        parts = _split_marks(to_sign)
        head, self._mid, self._tail = parts or ("", "", "")
        self._head = sys.intern(head)
        self._mac = _shared_mac(kwargs["access_key_secret"], digest)
        self._auth_prefix = sys.intern(auth_prefix)
        self._fallback: dict[str, Any] | None = kwargs if parts is None else None

    def marked_headers(self) -> dict[str, str] | None:
        """The headers :meth:`headers` returns, with the :data:`HEADER_MARKS` in place of the
        date, the nonce and the ``Authorization`` value (what :meth:`authorization` gives); None
        where this signer falls back to the plain one."""
        if self._fallback is not None:
            return None
        return {**self._template, "authorization": HEADER_MARKS[2]}


class PreparedAcs3Signer(_PreparedSigner):
    """:func:`acs3_headers` for one fixed request and key: call :meth:`headers` with a date and a
    nonce. The canonical request is precomputed around them, and the HMAC key schedule too."""

    __slots__ = ()

    def __init__(self, **request: Unpack[Acs3Request]) -> None:
        kwargs = _request_kwargs(request)
        marked = acs3_headers(**kwargs, date=_DATE_MARK, nonce=_NONCE_MARK)
        del marked["authorization"]
        sig = sign_acs3(
            method=kwargs["method"],
            pathname=kwargs["pathname"],
            query=kwargs["query"],
            headers=marked,
            payload_hash=marked["x-acs-content-sha256"],
            access_key_id=kwargs["access_key_id"],
            access_key_secret=kwargs["access_key_secret"],
        )
        self._prepare(
            "acs3",
            kwargs,
            marked,
            sig.canonical_request,
            "sha256",
            f"{ACS3_ALGORITHM} Credential={kwargs['access_key_id']},SignedHeaders={sig.signed_headers},Signature=",
        )

    def headers(self, date: str, nonce: str) -> dict[str, str]:
        """The headers :func:`acs3_headers` returns for this request with ``date`` and ``nonce``
        (which must not contain NUL characters)."""
        if self._fallback is not None:
            return acs3_headers(**self._fallback, date=date, nonce=nonce)
        headers = self._template.copy()
        headers["x-acs-date"] = date
        headers["x-acs-signature-nonce"] = nonce
        headers["authorization"] = self.authorization(date, nonce)
        return headers

    def authorization(self, date: str, nonce: str) -> str:
        """The ``Authorization`` value of :meth:`headers` ``(date, nonce)``."""
        if self._fallback is not None:
            return acs3_headers(**self._fallback, date=date, nonce=nonce)["authorization"]
        canonical = f"{self._head}{date.strip()}{self._mid}{nonce.strip()}{self._tail}"
        mac = self._mac.copy()
        mac.update(f"{ACS3_ALGORITHM}\n{sha256_hex(canonical.encode('utf-8'))}".encode())
        return self._auth_prefix + mac.hexdigest()


class PreparedPdsSigner(_PreparedSigner):
    """:func:`pds_headers` for one fixed request and key: call :meth:`headers` with a date
    (RFC 1123) and a nonce. PDS signs no request-specific part but the resource (path and
    query), so equal requests to one domain share one prepared signer's parts."""

    __slots__ = ()

    def __init__(self, **request: Unpack[SignedRequest]) -> None:
        kwargs = _request_kwargs(request)
        marked = pds_headers(**kwargs, date=_DATE_MARK, nonce=_NONCE_MARK)
        del marked["authorization"]
        string_to_sign = pds_string_to_sign(
            method=kwargs["method"], pathname=kwargs["pathname"], query=kwargs["query"], headers=marked
        )
        self._prepare("pds", kwargs, marked, string_to_sign, "sha1", f"acs {kwargs['access_key_id']}:")

    def headers(self, date: str, nonce: str) -> dict[str, str]:
        """The headers :func:`pds_headers` returns for this request with ``date`` and ``nonce``
        (which must not contain NUL characters)."""
        if self._fallback is not None:
            return pds_headers(**self._fallback, date=date, nonce=nonce)
        headers = self._template.copy()
        headers["date"] = date
        headers["x-acs-signature-nonce"] = nonce
        headers["authorization"] = self.authorization(date, nonce)
        return headers

    def authorization(self, date: str, nonce: str) -> str:
        """The ``Authorization`` value of :meth:`headers` ``(date, nonce)``."""
        if self._fallback is not None:
            return pds_headers(**self._fallback, date=date, nonce=nonce)["authorization"]
        mac = self._mac.copy()
        mac.update(f"{self._head}{date}{self._mid}{nonce.strip()}{self._tail}".encode())
        return self._auth_prefix + base64.b64encode(mac.digest()).decode("ascii")


# Cache: the formatted dates of one second. Keyed on the epoch second; replaced when it changes.
_date_cache: tuple[int, str, str] = (-1, "", "")


def dates(epoch_seconds: float) -> tuple[str, str]:
    """``(format_acs_date(t), format_http_date(t))``, formatted once per second."""
    global _date_cache
    second = int(epoch_seconds // 1)
    cached = _date_cache
    if cached[0] != second:
        cached = _date_cache = (second, format_acs_date(second), format_http_date(second))
    return cached[1], cached[2]
