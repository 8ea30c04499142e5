"""One API call (:class:`Call`) and what is computed once per call: its URL as each sender
takes it, its prepared signer, and from those the headers of each attempt.

A trigger polls the same call thousands of times: only the date, the nonce and the final HMAC
change between attempts, so the canonical request around them and the signing key are prepared
once (:class:`~airflow_aliyun_tasks.signing.PreparedAcs3Signer`,
:class:`~airflow_aliyun_tasks.signing.PreparedPdsSigner`) and kept with the call.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import httpx

from airflow_aliyun_tasks import signing
from airflow_aliyun_tasks._transport.shared import HeaderLayout
from airflow_aliyun_tasks.config import Endpoint
from airflow_aliyun_tasks.credentials import Credentials
from airflow_aliyun_tasks.errors import ConfigurationError

if TYPE_CHECKING:
    from airflow_aliyun_tasks._transport import AsyncSender, SyncSender

__all__ = ["Call", "Signer", "call_url"]

#: How a call is authorized: ACS3-HMAC-SHA256 (the OpenAPI services, STS), PDS's scheme (or its
#: bearer token), ``none`` (ROA-style headers, unsigned) or ``rpc`` (unsigned RPC: query only).
Signer = Literal["acs3", "pds", "none", "rpc"]


@dataclass(frozen=True)
class Call:
    """One API call, independent of credentials: what the hook asks the client to send.

    ``headers``: request headers of the operation (ids in headers, Function Compute's
    ``x-fc-*``), sent beside the signed ones and not signed; their names are checked by the
    registry (never ``x-acs-*``). ``empty_ok``: an empty 2xx answer is accepted (as ``{}``)."""

    endpoint: Endpoint
    action: str
    version: str
    method: str = "POST"
    path: str = "/"
    query: Mapping[str, str] | None = None
    body: bytes = b""
    content_type: str | None = None
    signer: Signer = "acs3"
    headers: Mapping[str, str] | None = None
    empty_ok: bool = False

    @cached_property
    def _plan(self) -> _Plan:
        # Cache: what is computed once per call (see _Plan). Keyed on this Call object (equal
        # calls each have their own); dropped with the call, which the hook keeps while it polls.
        # Not a field: equality, hashing and repr ignore it; computed on first send.
        return _Plan(self)


def call_url(call: Call) -> str:
    """The URL of ``call``: endpoint, encoded path, canonical query."""
    url = call.endpoint.url + signing.encode_path(call.path)
    query = signing.canonical_query(call.query)
    return f"{url}?{query}" if query else url


def _require_keys(creds: Credentials, call: Call) -> None:
    if not creds.access_key_id or not creds.access_key_secret:
        raise ConfigurationError(
            "auth_type",
            f"{call.action} needs an AccessKey pair (or STS credentials); a bearer token only works for PDS",
        )


#: Most header layouts kept (:func:`_shared_layout`); the cache is emptied whole past it.
_LAYOUTS_MAX = 256
# Cache: header layouts, shared by the calls that send the same headers but for date, nonce and
# signature (the waits of one service, endpoint and key). Keyed on the marked headers' items;
# emptied whole when it reaches _LAYOUTS_MAX entries (plans keep the layout they were given).
_layouts: dict[tuple[tuple[str, str], ...], HeaderLayout] = {}


def _shared_layout(marked: dict[str, str]) -> HeaderLayout:
    key = tuple(marked.items())
    layout = _layouts.get(key)
    if layout is None:
        if len(_layouts) >= _LAYOUTS_MAX:
            _layouts.clear()
        layout = _layouts[key] = HeaderLayout(marked, signing.HEADER_MARKS)
    return layout


class _Plan:
    """What does not change between sends of one :class:`Call`: the URL (as each sender takes
    it), the prepared signer of the last credentials used, and the layout of its headers."""

    __slots__ = ("creds", "host", "layout", "layout_agent", "layout_signer", "prepared", "wire", "wire_type")

    def __init__(self, call: Call) -> None:
        self.host = sys.intern(call.endpoint.netloc)
        # Cache: the URL as a sender takes it. Keyed on the sender's type; replaced when a
        # sender of another type sends the call (a route's, or one swapped in by bench/).
        self.wire_type: type | None = None
        self.wire: Any = None
        # Cache: the prepared signer. Keyed on the credentials it was made with (the same
        # snapshot, or an equal one); replaced when the credentials change (rotated keys, fresh
        # STS credentials).
        self.creds: Credentials | None = None
        self.prepared: Any = None
        # Cache: the header layout (constant lines around date, nonce and signature). Keyed on
        # the prepared signer and the User-Agent it was made with; replaced with either. None
        # for a signer that falls back to the plain functions.
        self.layout_signer: Any = None
        self.layout_agent = ""
        self.layout: HeaderLayout | None = None

    def wire_url(self, call: Call, sender: SyncSender | AsyncSender) -> Any:
        """The call's URL as ``sender`` takes it."""
        if self.wire_type is not type(sender):
            self.wire = sender.url(call_url(call))
            self.wire_type = type(sender)
        return self.wire

    def signer(self, call: Call, creds: Credentials) -> Any:
        prepared: Any = self.prepared
        if prepared is not None and (self.creds is creds or self.creds == creds):
            return prepared
        request: signing.SignedRequest = {
            "method": call.method,
            "host": self.host,
            "pathname": call.path,
            "query": call.query,
            "action": call.action,
            "version": call.version,
            "content_type": call.content_type,
            "access_key_id": creds.access_key_id or "",
            "access_key_secret": creds.access_key_secret or "",
            "security_token": creds.security_token,
        }
        if call.signer == "pds":
            prepared = signing.PreparedPdsSigner(**request)
        else:
            prepared = signing.PreparedAcs3Signer(**request, body=call.body)
        self.creds, self.prepared = creds, prepared
        return prepared

    @staticmethod
    def _layout(call: Call, prepared: Any, user_agent: str) -> HeaderLayout | None:
        """The layout of the signed headers of ``call`` (what :meth:`headers` adds to the
        signer's, in the same order), shared with equal calls; None if the signer falls back."""
        marked: dict[str, str] | None = prepared.marked_headers()
        if marked is None:
            return None
        if call.signer == "acs3":
            marked["accept"] = "application/json"
        marked["user-agent"] = user_agent
        if call.headers:
            marked.update(call.headers)
        try:
            return _shared_layout(marked)
        except (ValueError, httpx.LocalProtocolError):
            return None  # the headers as a dict: sending them says what is wrong

    def headers(
        self, call: Call, creds: Credentials, now: float, nonce: str, user_agent: str
    ) -> Mapping[str, str]:
        """The headers of one attempt: signed at ``now`` (epoch seconds) with ``nonce``."""
        if call.signer == "acs3" or (call.signer == "pds" and not creds.bearer_token):
            _require_keys(creds, call)
            # == signing.acs3_headers(...) / pds_headers(...) for this call, precomputed (see
            # PreparedAcs3Signer, PreparedPdsSigner), laid out once (see HeaderLayout)
            prepared = self.signer(call, creds)
            date = signing.dates(now)[0 if call.signer == "acs3" else 1]
            if self.layout_signer is not prepared or self.layout_agent != user_agent:
                self.layout = self._layout(call, prepared, user_agent)
                self.layout_signer, self.layout_agent = prepared, user_agent
            if self.layout is not None:
                return self.layout.fill(date, nonce, prepared.authorization(date, nonce))
            headers: dict[str, str] = prepared.headers(date, nonce)
            if call.signer == "acs3":
                headers["accept"] = "application/json"
        elif call.signer == "rpc":
            # An unsigned RPC-style call (STS AssumeRoleWithOIDC): everything is in the query.
            headers = {"host": self.host, "accept": "application/json"}
        else:  # a PDS bearer token, or "none": ROA-style headers
            headers = {
                "host": self.host,
                "accept": "application/json",
                "x-acs-action": call.action,
                "x-acs-version": call.version,
            }
            if call.signer == "pds":
                headers.update(signing.bearer_headers(creds.bearer_token or ""))
            else:
                headers["x-acs-date"] = signing.dates(now)[0]
                headers["x-acs-signature-nonce"] = nonce
            if call.content_type:
                headers["content-type"] = call.content_type
        headers["user-agent"] = user_agent
        if call.headers:
            headers.update(call.headers)
        return headers
