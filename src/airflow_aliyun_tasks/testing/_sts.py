"""STS (2015-04-01, RPC): GetCallerIdentity, AssumeRole and the unsigned AssumeRoleWithOIDC.

Keys minted by AssumeRole live ``min(DurationSeconds, sts_ttl_seconds)``; requests signed with
them must carry their token. The key and token formats are the emulator's own (UNVERIFIED).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_aliyun_tasks.testing._auth import KeyRecord
from airflow_aliyun_tasks.testing._base import Call, Op, Reply, Service, Store, iso_seconds

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "sts"
VERSION = "2015-04-01"
_ROLE_ARN = re.compile(r"^acs:ram::(?P<account>\d+):role/(?P<role>[A-Za-z0-9._@\-/]+)$")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


def _error(status: int, code: str, message: str, call: Call) -> Reply:
    return SERVICE.error(status, code, message, call.host, call.rid)


def _missing(name: str, call: Call) -> Reply:
    return _error(400, f"Missing{name}", f"{name} is mandatory for this action.", call)


def _caller_identity(emu: Emulator, call: Call) -> Reply:
    principal = call.principal
    identity = dict(principal.key.identity) if principal and principal.key else {}
    identity.pop("AssumedRoleArn", None)
    return Reply(200, {"RequestId": call.rid, **identity})


def _credentials_reply(record: KeyRecord, rid: str, extra: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {
        "RequestId": rid,
        "AssumedRoleUser": {
            "Arn": record.identity["Arn"],
            "AssumedRoleId": record.identity["PrincipalId"],
        },
        "Credentials": {
            "AccessKeyId": record.access_key_id,
            "AccessKeySecret": record.secret,
            "SecurityToken": record.security_token,
            "Expiration": iso_seconds(record.expires_at or 0.0),
        },
    }
    body.update(extra or {})
    return Reply(200, body)


def _validate(params: Mapping[str, str], call: Call) -> Reply | int:
    """The role's duration in seconds, or the error reply for bad role parameters."""
    role_arn = params.get("RoleArn")
    if not role_arn:
        return _missing("RoleArn", call)
    if not _ROLE_ARN.match(role_arn):
        return _error(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.", call)
    try:
        duration = int(params.get("DurationSeconds") or "3600")
    except ValueError:
        duration = -1
    if not 900 <= duration <= 43200:
        message = "The DurationSeconds must be between 900 and 43200 (the role's maximum session duration)."
        return _error(400, "InvalidParameter.DurationSeconds", message, call)
    policy = params.get("Policy")
    if policy:
        try:
            json.loads(policy)
        except ValueError:
            message = "The parameter Policy has not passed grammar check."
            return _error(400, "InvalidParameter.PolicyGrammar", message, call)
    return duration


def _assume_role(emu: Emulator, call: Call) -> Reply:
    checked = _validate(call.params, call)
    if isinstance(checked, Reply):
        return checked
    session = call.params.get("RoleSessionName")
    if not session:
        return _missing("RoleSessionName", call)
    return _credentials_reply(emu._issue_sts(call.params["RoleArn"], session, checked), call.rid)


def _oidc_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _assume_role_oidc(emu: Emulator, call: Call) -> Reply:
    for name in ("OIDCProviderArn", "OIDCToken"):
        if not call.params.get(name):
            return _missing(name, call)
    checked = _validate(call.params, call)
    if isinstance(checked, Reply):
        return checked
    claims = _oidc_claims(call.params["OIDCToken"])
    session = call.params.get("RoleSessionName") or f"oidc-{secrets.token_hex(4)}"
    record = emu._issue_sts(call.params["RoleArn"], session, checked)
    audience = claims.get("aud", "")
    info = {
        "OIDCTokenInfo": {
            "Subject": str(claims.get("sub", "")),
            "Issuer": str(claims.get("iss", "")),
            "ClientIds": ",".join(audience) if isinstance(audience, list) else str(audience),
        }
    }
    return _credentials_reply(record, call.rid, info)


SERVICE = Service(
    name=NAME,
    product="Sts",
    ops=(
        Op(NAME, "GetCallerIdentity", VERSION, "RPC", _caller_identity),
        Op(NAME, "AssumeRole", VERSION, "RPC", _assume_role),
        Op(NAME, "AssumeRoleWithOIDC", VERSION, "RPC", _assume_role_oidc, anonymous=True),
    ),
)


class StsKeys(Store):
    """The STS keys the emulator has minted."""

    sts_ttl_seconds: int
    _sts_keys: dict[str, KeyRecord]

    def _reset_state(self) -> None:
        super()._reset_state()
        self._sts_keys = {}

    def issue_sts_credentials(
        self,
        role_arn: str | None = None,
        role_session_name: str = "emulator-session",
        duration_seconds: int | None = None,
    ) -> dict[str, str]:
        """Mint STS credentials as AssumeRole would (lifetime ``min(duration, sts_ttl_seconds)``).

        Returns ``{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}``.
        """
        record = self._issue_sts(
            role_arn or f"acs:ram::{self.account_id}:role/emulator-role",
            role_session_name,
            duration_seconds if duration_seconds is not None else self.sts_ttl_seconds,
        )
        return {
            "AccessKeyId": record.access_key_id,
            "AccessKeySecret": record.secret,
            "SecurityToken": record.security_token or "",
            "Expiration": iso_seconds(record.expires_at or 0.0),
        }

    def _issue_sts(self, role_arn: str, session: str, duration: int) -> KeyRecord:
        match = _ROLE_ARN.match(role_arn)
        role = match["role"] if match else "emulator-role"
        account = match["account"] if match else self.account_id
        role_id = str(int(hashlib.sha256(role_arn.encode()).hexdigest(), 16))[:19]
        lifetime = max(1, min(int(duration), self.sts_ttl_seconds))
        access_key_id = "STS.NT" + "".join(secrets.choice(_ALPHABET) for _ in range(26))
        record = KeyRecord(
            access_key_id=access_key_id,
            secret="".join(secrets.choice(_ALPHABET) for _ in range(44)),
            security_token="CAIS" + base64.b64encode(secrets.token_bytes(240)).decode(),
            expires_at=self.now() + lifetime,
            identity={
                "AccountId": account,
                "UserId": f"{role_id}:{session}",
                "PrincipalId": f"{role_id}:{session}",
                "RoleId": role_id,
                "Arn": f"acs:ram::{account}:assumed-role/{role.lower()}/{session}",
                "IdentityType": "AssumedRoleUser",
                "AssumedRoleArn": f"acs:ram::{account}:role/{role.lower()}/{session}",
            },
        )
        with self._lock:
            self._sts_keys[access_key_id] = record
        return record
