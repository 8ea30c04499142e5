"""Signature verification for the emulator, as the Alibaba Cloud gateways do it.

The canonicalization here is the emulator's own, written from the public specification, and
shares no code with the package's signers: a canonicalization bug in either then shows up as a
signature mismatch instead of cancelling out. The official SDK signers are the referee (the
tests sign with them).

Three schemes:

- ACS3-HMAC-SHA256 ("V3", ``Authorization: ACS3-HMAC-SHA256 Credential=...``) for the POP APIs;
- the ``acs <AccessKeyId>:<signature>`` HMAC-SHA1 scheme: PDS's default ("v1" of
  ``alibabacloud-gateway-pds``) and the legacy ROA signature of the POP gateway;
- the legacy RPC signature ("V2", ``Signature=`` in the query or form) for RPC APIs;
  ``alibabacloud-credentials`` still signs STS AssumeRole this way.

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
from urllib.parse import quote, unquote

__all__ = [
    "AuthError",
    "KeyRecord",
    "Principal",
    "SignedRequest",
    "Verifier",
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

_ACS3 = "ACS3-HMAC-SHA256"
_ACS3_RE = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=(?P<ak>[^,\s]+)\s*,\s*SignedHeaders=(?P<sh>[^,\s]*)\s*,"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)
_ACS_V1_RE = re.compile(r"^acs\s+(?P<ak>[^:\s]+):(?P<sig>\S+)$")


# ------------------------------------------------------------------------- canonicalization


def rfc3986(text: str) -> str:
    """RFC 3986 encoding of UTF-8 text: ``A-Z a-z 0-9 - _ . ~`` kept, all else ``%XX`` (upper case).

    So a space is ``%20`` (never ``+``), ``*`` is ``%2A`` and ``/`` is ``%2F``.
    """
    return quote(text.encode("utf-8"), safe="-_.~")


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a request path: every segment decoded, then RFC 3986 encoded.

    The official SDK percent-encodes each path parameter and signs the encoded path as is; an
    encoded ``/`` inside a segment (``%2F``) therefore stays encoded. An empty path is ``/``.
    """
    if not raw_path:
        return "/"
    return "/".join(rfc3986(unquote(segment)) for segment in raw_path.split("/"))


def canonical_query_string(params: Mapping[str, str]) -> str:
    """V3 canonical query: ``enc(name)=enc(value)`` sorted by name, joined by ``&``.

    An empty value keeps its ``=``; no query gives the empty string.
    """
    return "&".join(f"{rfc3986(name)}={rfc3986(params[name])}" for name in sorted(params))


def signed_header_value(req: SignedRequest, name: str) -> str:
    """A header's canonical value: its values trimmed, sorted and joined by commas."""
    return ",".join(sorted(value.strip() for value in req.headers.get(name, [])))


def acs3_canonical_request(req: SignedRequest, signed_headers: Sequence[str], payload_hash: str) -> str:
    """The V3 canonical request: method, URI, query, headers, signed header names, payload hash."""
    header_lines = "".join(f"{name}:{signed_header_value(req, name)}\n" for name in signed_headers)
    return "\n".join(
        (
            req.method.upper(),
            canonical_uri(req.raw_path),
            canonical_query_string(dict(req.query)),
            header_lines,
            ";".join(signed_headers),
            payload_hash,
        )
    )


def acs3_string_to_sign(canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{_ACS3}\n{digest}"


def acs_v1_string_to_sign(req: SignedRequest) -> str:
    """The ``acs`` HMAC-SHA1 string to sign (PDS v1, legacy POP ROA).

    ``METHOD\\nAccept\\nContent-MD5\\nContent-Type\\nDate\\n``, then every ``x-acs-*`` header as
    ``name:value\\n`` sorted by name, then the resource: the path as sent, and ``?`` with the
    query sorted by name, values as they are (not encoded), an empty value as the bare name.
    """
    joined = {name: ",".join(values) for name, values in req.headers.items()}
    top = [
        req.method.upper(),
        *(joined.get(n, "") for n in ("accept", "content-md5", "content-type", "date")),
    ]
    acs_headers = "".join(
        f"{name}:{joined[name].strip()}\n" for name in sorted(joined) if name.startswith("x-acs-")
    )
    query = dict(req.query)
    resource = req.raw_path or "/"
    if query:
        resource += "?" + "&".join(f"{k}={query[k]}" if query[k] != "" else k for k in sorted(query))
    return "\n".join(top) + "\n" + acs_headers + resource


def rpc_v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """The legacy RPC (V2) string to sign over every parameter except ``Signature``."""
    canonical = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params.items()) if k != "Signature")
    return f"{method.upper()}&{rfc3986('/')}&{rfc3986(canonical)}"


def _hmac(secret: str, text: str, digest: Any) -> bytes:
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), digest).digest()


# --------------------------------------------------------------------------------- checks


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


@dataclass(frozen=True)
class Verifier:
    """Checks signatures as a gateway does, with its clock, key lookup and nonce store."""

    lookup: KeyLookup
    check_nonce: NonceCheck
    now: float
    max_skew: float
    log: Callable[[str], Any] | None = None

    def _key(self, access_key_id: str, security_token: str | None) -> KeyRecord:
        key = self.lookup(access_key_id)
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
            if key.expires_at is not None and self.now >= key.expires_at:
                raise AuthError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
        return key

    def _settle(
        self,
        key: KeyRecord,
        scheme: str,
        signatures: tuple[str, str],
        string_to_sign: str,
        *,
        nonce: str | None,
        shown: str,
        status: int = 400,
    ) -> Principal:
        """Accept the request if the ``(expected, given)`` signatures agree and its nonce is new.

        ``shown`` is what the log shows of the server's side; ``status`` that of a mismatch.
        """
        if not hmac.compare_digest(*signatures):
            if self.log is not None:
                self.log(f"{scheme} signature mismatch; server {shown}")
            raise AuthError(
                status,
                "SignatureDoesNotMatch",
                SIGNATURE_MISMATCH_MESSAGE + string_to_sign,
                string_to_sign=string_to_sign,
            )
        if not nonce:
            raise AuthError(400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action.")
        if not self.check_nonce(key.access_key_id, nonce):
            raise AuthError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        return Principal(key=key, scheme=scheme)

    def acs3(self, req: SignedRequest) -> Principal:
        """Verify an ACS3-HMAC-SHA256 request, raising :class:`AuthError` as the POP gateway does."""
        authorization = req.header("authorization") or ""
        match = _ACS3_RE.match(authorization.strip())
        if match is None:
            raise AuthError(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards: the Authorization header "
                "must be 'ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<headers>,Signature=<hex>'.",
            )
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

        key = self._key(match["ak"], req.header("x-acs-security-token"))
        date = req.header("x-acs-date")
        _check_skew(_parse_iso(date, "x-acs-date"), self.now, self.max_skew, date or "")
        # The payload line is the hash of the body as received: a wrong x-acs-content-sha256 header
        # then fails the signature, with the server's string to sign in the message.
        canonical = acs3_canonical_request(req, signed, hashlib.sha256(req.body).hexdigest())
        string_to_sign = acs3_string_to_sign(canonical)
        expected = _hmac(key.secret, string_to_sign, hashlib.sha256).hex()
        nonce = req.header("x-acs-signature-nonce")
        shown = f"canonical request:\n{canonical}"
        return self._settle(
            key, "acs3", (expected, match["sig"].lower()), string_to_sign, nonce=nonce, shown=shown
        )

    def acs_v1(
        self, req: SignedRequest, *, skew_error: tuple[int, str] | None = None, mismatch_status: int = 400
    ) -> Principal:
        """Verify an ``acs AK:signature`` (HMAC-SHA1) request: PDS v1, or the POP legacy ROA scheme.

        ``skew_error`` overrides the (status, code) of a date too far from the server's clock.
        """
        match = _ACS_V1_RE.match((req.header("authorization") or "").strip())
        if match is None:
            raise AuthError(
                400,
                "IncompleteSignature",
                "The Authorization header must be 'acs <AccessKeyId>:<signature>'.",
            )
        key = self._key(match["ak"], req.header("x-acs-security-token"))
        date_header = req.header("date")
        sent = _parse_http_date(date_header)
        if sent is None:
            raise AuthError(400, "MissingParameter", "The request header date is required (RFC 1123, GMT).")
        if abs(sent - self.now) > self.max_skew:
            status, code = skew_error or (400, "InvalidTimeStamp.Expired")
            raise AuthError(
                status,
                code,
                f"The difference between the request time {date_header} and the server time "
                f"{_server_time(self.now)} is more than {self.max_skew:g} seconds.",
            )
        string_to_sign = acs_v1_string_to_sign(req)
        expected = base64.b64encode(_hmac(key.secret, string_to_sign, hashlib.sha1)).decode("ascii")
        return self._settle(
            key,
            "acs_v1",
            (expected, match["sig"]),
            string_to_sign,
            nonce=req.header("x-acs-signature-nonce"),
            shown=f"string to sign:\n{string_to_sign}",
            status=mismatch_status,
        )

    def rpc_v2(self, req: SignedRequest, params: Mapping[str, str]) -> Principal:
        """Verify a legacy RPC (V2, HMAC-SHA1) request whose parameters are ``params``."""
        access_key_id = params.get("AccessKeyId")
        if not access_key_id:
            raise AuthError(400, "MissingAccessKeyId", "AccessKeyId is mandatory for this action.")
        method = params.get("SignatureMethod", "")
        if method != "HMAC-SHA1":
            raise AuthError(
                400, "InvalidSignatureMethod", f"Specified signature method {method!r} is not supported."
            )
        key = self._key(access_key_id, params.get("SecurityToken"))
        timestamp = params.get("Timestamp")
        _check_skew(_parse_iso(timestamp, "Timestamp"), self.now, self.max_skew, timestamp or "")
        string_to_sign = rpc_v2_string_to_sign(req.method, params)
        expected = base64.b64encode(_hmac(key.secret + "&", string_to_sign, hashlib.sha1)).decode("ascii")
        signatures = (expected, params.get("Signature", ""))
        shown = f"string to sign:\n{string_to_sign}"
        return self._settle(
            key, "rpc_v2", signatures, string_to_sign, nonce=params.get("SignatureNonce"), shown=shown
        )
