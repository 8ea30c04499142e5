"""Signature verification for the emulator, as the Alibaba Cloud gateways do it.

Three schemes, recomputed with the package's own pure signers (:mod:`airflow_aliyun_tasks.signing`):

- ACS3-HMAC-SHA256 ("V3", ``Authorization: ACS3-HMAC-SHA256 Credential=...``) for the POP APIs
  (DLF, DataWorks, MaxCompute MMA, STS);
- the ``acs <AccessKeyId>:<signature>`` HMAC-SHA1 scheme: PDS's default ("v1" of
  ``alibabacloud-gateway-pds``) and the legacy ROA signature of the POP gateway;
- the legacy RPC signature ("V2", ``Signature=`` in the query or form) for RPC APIs
  (DataWorks, STS); ``alibabacloud-credentials`` still signs STS AssumeRole this way.

Everything here is synchronous and free of I/O; the emulator passes the clock, the key lookup
and the nonce store in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from airflow_aliyun_tasks.signing import (
    ACS3_ALGORITHM,
    canonical_query,
    encode_path,
    percent_encode,
    sha256_hex,
    sign_acs3,
    sign_pds,
)

__all__ = [
    "AuthError",
    "KeyRecord",
    "Principal",
    "SignedRequest",
    "verify_acs3",
    "verify_acs_v1",
    "verify_rpc_v2",
]

SIGNATURE_MISMATCH_MESSAGE = (
    "Specified signature is not matched with our calculation. server string to sign is:"
)


class AuthError(Exception):
    """A request failed authentication; carries the HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str, *, string_to_sign: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.string_to_sign = string_to_sign


@dataclass
class KeyRecord:
    """An access key the emulator knows: a long-term key or an STS key it issued."""

    access_key_id: str
    secret: str
    security_token: str | None = None
    expires_at: float | None = None
    identity: dict[str, str] = field(default_factory=dict)

    @property
    def is_sts(self) -> bool:
        return self.security_token is not None


@dataclass(frozen=True)
class Principal:
    """Who signed an accepted request."""

    key: KeyRecord | None
    scheme: str  # "acs3" | "acs_v1" | "rpc_v2" | "bearer"
    bearer_token: str | None = None


@dataclass
class SignedRequest:
    """The parts of an HTTP request that signatures cover, as received."""

    method: str
    raw_path: str  # percent-encoded, as on the wire
    query: list[tuple[str, str]]  # decoded ('+' is a space)
    headers: dict[str, list[str]]  # lower-case names
    body: bytes
    form: list[tuple[str, str]] = field(default_factory=list)  # decoded form body (RPC POST)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        if not values:
            return None
        return values[0]

    def query_dict(self) -> dict[str, str]:
        return dict(self.query)


KeyLookup = Callable[[str], KeyRecord | None]
NonceCheck = Callable[[str, str], bool]  # (access_key_id, nonce) -> True if new (and now recorded)

_ACS3_RE = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=(?P<ak>[^,\s]+)\s*,\s*SignedHeaders=(?P<sh>[^,\s]*)\s*,"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)
_ACS_V1_RE = re.compile(r"^acs\s+(?P<ak>[^:\s]+):(?P<sig>\S+)$")


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a request path: every segment decoded, then RFC 3986 encoded.

    This is what the official SDK signs: it percent-encodes path parameters (``quote(safe='')``,
    ``*`` as ``%2A``, ``~`` kept) and signs the encoded pathname as is.
    """
    if not raw_path:
        return "/"
    return "/".join(percent_encode(unquote(segment)) for segment in raw_path.split("/"))


def _server_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_skew(sent: float, now: float, max_skew: float, shown: str) -> None:
    if abs(sent - now) > max_skew:
        raise AuthError(
            400,
            "InvalidTimeStamp.Expired",
            f"Specified time stamp or date value is expired. The request time {shown} differs from the "
            f"server time {_server_time(now)} by more than {max_skew:g} seconds.",
        )


def _parse_iso(value: str | None, what: str) -> float:
    if not value:
        raise AuthError(400, "MissingParameter", f"{what} is mandatory for this action.")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise AuthError(
            400,
            "InvalidTimeStamp.Format",
            f"Specified time stamp or date value is not well formatted: {value!r} "
            "(expected YYYY-MM-DDThh:mm:ssZ).",
        ) from None


def _parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _resolve_key(
    access_key_id: str,
    security_token: str | None,
    lookup: KeyLookup,
    now: float,
) -> KeyRecord:
    key = lookup(access_key_id)
    if key is None:
        raise AuthError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if key.is_sts:
        if not security_token:
            raise AuthError(400, "MissingSecurityToken", "SecurityToken is mandatory for this action.")
        if not hmac.compare_digest(security_token, key.security_token or ""):
            raise AuthError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
    return key


def _use_nonce(nonce: str | None, access_key_id: str, check_nonce: NonceCheck) -> None:
    if not nonce:
        raise AuthError(400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action.")
    if not check_nonce(access_key_id, nonce):
        raise AuthError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")


def _signed_header_value(req: SignedRequest, name: str) -> str:
    values = [v.strip() for v in req.headers.get(name, [])]
    return ",".join(sorted(values))


def acs3_canonical_request(
    req: SignedRequest, signed_headers: Sequence[str], payload_hash: str
) -> tuple[str, str] | None:
    """``(canonical_request, string_to_sign)`` when the path needs the fallback (encoded ``/``)."""
    uri = canonical_uri(req.raw_path)
    if encode_path(unquote(req.raw_path)) == uri:
        return None
    lines = "".join(f"{n}:{_signed_header_value(req, n)}\n" for n in signed_headers)
    canonical = "\n".join(
        (
            req.method.upper(),
            uri,
            canonical_query(dict(req.query)),
            lines,
            ";".join(signed_headers),
            payload_hash,
        )
    )
    return canonical, f"{ACS3_ALGORITHM}\n{sha256_hex(canonical.encode('utf-8'))}"


def verify_acs3(
    req: SignedRequest,
    *,
    lookup: KeyLookup,
    check_nonce: NonceCheck,
    now: float,
    max_skew: float,
    log: Callable[[str], Any] | None = None,
) -> Principal:
    """Verify an ACS3-HMAC-SHA256 request, raising :class:`AuthError` as the POP gateway does."""
    authorization = req.header("authorization") or ""
    match = _ACS3_RE.match(authorization.strip())
    if match is None:
        raise AuthError(
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards: the Authorization header must be "
            "'ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<headers>,Signature=<hex>'.",
        )
    access_key_id = match["ak"]
    signed = sorted({h.strip().lower() for h in match["sh"].split(";") if h.strip()})
    required = {"host"} | {name for name in req.headers if name.startswith("x-acs-")}
    missing = sorted(required - set(signed))
    if missing:
        raise AuthError(
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards. These headers must be signed: "
            + ", ".join(missing),
        )
    for name in (
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
        "x-acs-action",
        "x-acs-version",
    ):
        if req.header(name) is None:
            raise AuthError(400, "MissingParameter", f"The request header {name} is required.")

    key = _resolve_key(access_key_id, req.header("x-acs-security-token"), lookup, now)
    date = req.header("x-acs-date")
    _check_skew(_parse_iso(date, "x-acs-date"), now, max_skew, date or "")

    # The payload line is the hash of the body as received: a wrong x-acs-content-sha256 header then
    # fails the signature, with the server's string to sign in the message.
    payload_hash = sha256_hex(req.body)
    fallback = acs3_canonical_request(req, signed, payload_hash)
    if fallback is None:
        result = sign_acs3(
            method=req.method,
            pathname=unquote(req.raw_path) or "/",
            query=dict(req.query),
            headers={name: _signed_header_value(req, name) for name in signed},
            payload_hash=payload_hash,
            access_key_id=access_key_id,
            access_key_secret=key.secret,
        )
        canonical, string_to_sign, expected = (
            result.canonical_request,
            result.string_to_sign,
            result.signature,
        )
    else:
        canonical, string_to_sign = fallback
        expected = hmac.new(key.secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["sig"].lower()):
        if log is not None:
            log(f"ACS3 signature mismatch; server canonical request:\n{canonical}")
        raise AuthError(
            400,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH_MESSAGE + string_to_sign,
            string_to_sign=string_to_sign,
        )
    _use_nonce(req.header("x-acs-signature-nonce"), access_key_id, check_nonce)
    return Principal(key=key, scheme="acs3")


def verify_acs_v1(
    req: SignedRequest,
    *,
    lookup: KeyLookup,
    check_nonce: NonceCheck,
    now: float,
    max_skew: float,
    skew_error: tuple[int, str] | None = None,
    mismatch_status: int = 400,
    log: Callable[[str], Any] | None = None,
) -> Principal:
    """Verify an ``acs AK:signature`` (HMAC-SHA1) request: PDS v1, or the POP legacy ROA scheme.

    ``skew_error`` overrides the (status, code) of a date too far from the server's clock.
    """
    authorization = (req.header("authorization") or "").strip()
    match = _ACS_V1_RE.match(authorization)
    if match is None:
        raise AuthError(
            400, "IncompleteSignature", "The Authorization header must be 'acs <AccessKeyId>:<signature>'."
        )
    access_key_id = match["ak"]
    key = _resolve_key(access_key_id, req.header("x-acs-security-token"), lookup, now)
    date_header = req.header("date")
    sent = _parse_http_date(date_header)
    if sent is None:
        raise AuthError(400, "MissingParameter", "The request header date is required (RFC 1123, GMT).")
    if abs(sent - now) > max_skew:
        status, code = skew_error or (400, "InvalidTimeStamp.Expired")
        raise AuthError(
            status,
            code,
            f"The difference between the request time {date_header} and the server time "
            f"{_server_time(now)} is more than {max_skew:g} seconds.",
        )
    flat = {name: ",".join(values) for name, values in req.headers.items()}
    expected, string_to_sign = sign_pds(
        method=req.method,
        pathname=req.raw_path or "/",
        query=dict(req.query),
        headers=flat,
        access_key_id=access_key_id,
        access_key_secret=key.secret,
    )
    if not hmac.compare_digest(expected, f"acs {access_key_id}:{match['sig']}"):
        if log is not None:
            log(f"acs v1 signature mismatch; server string to sign:\n{string_to_sign}")
        raise AuthError(
            mismatch_status,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH_MESSAGE + string_to_sign,
            string_to_sign=string_to_sign,
        )
    _use_nonce(req.header("x-acs-signature-nonce"), access_key_id, check_nonce)
    return Principal(key=key, scheme="acs_v1")


def rpc_v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """The legacy RPC (V2) string to sign over every parameter except ``Signature``."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def verify_rpc_v2(
    req: SignedRequest,
    params: Mapping[str, str],
    *,
    lookup: KeyLookup,
    check_nonce: NonceCheck,
    now: float,
    max_skew: float,
    log: Callable[[str], Any] | None = None,
) -> Principal:
    """Verify a legacy RPC (V2, HMAC-SHA1) request whose parameters are ``params``."""
    access_key_id = params.get("AccessKeyId")
    if not access_key_id:
        raise AuthError(400, "MissingAccessKeyId", "AccessKeyId is mandatory for this action.")
    method = params.get("SignatureMethod", "")
    if method != "HMAC-SHA1":
        raise AuthError(
            400, "InvalidSignatureMethod", f"Specified signature method {method!r} is not supported."
        )
    key = _resolve_key(access_key_id, params.get("SecurityToken"), lookup, now)
    timestamp = params.get("Timestamp")
    _check_skew(_parse_iso(timestamp, "Timestamp"), now, max_skew, timestamp or "")
    string_to_sign = rpc_v2_string_to_sign(req.method, params)
    digest = hmac.new((key.secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), params.get("Signature", "")):
        if log is not None:
            log(f"RPC V2 signature mismatch; server string to sign:\n{string_to_sign}")
        raise AuthError(
            400,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH_MESSAGE + string_to_sign,
            string_to_sign=string_to_sign,
        )
    _use_nonce(params.get("SignatureNonce"), access_key_id, check_nonce)
    return Principal(key=key, scheme="rpc_v2")
