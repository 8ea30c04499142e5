"""Credentials: the connection becomes a credential source, built once per connection per process.

- ``access_key``, ``sts`` and ``bearer`` are static.
- ``ram_role_arn`` and ``oidc_role_arn`` call STS ``AssumeRole`` / ``AssumeRoleWithOIDC`` with this
  package's own signer and HTTP client. The official library's providers for these two always
  call STS over https whatever endpoint is configured, and refresh synchronously under a thread
  lock, also from async code; ours honours the connection's ``sts_endpoint`` (so the emulator can
  stand in for STS) and refresh without blocking the event loop.
- ``ecs_ram_role``, ``credentials_uri`` and ``default`` (the library's chain) use
  ``alibabacloud_credentials``, imported only when such a connection is used (it costs about
  250 ms and pulls in aiohttp).

Nothing here logs or reprs a secret.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_aliyun_tasks.errors import AuthenticationError, BadResponseError, ConfigurationError

if TYPE_CHECKING:
    from airflow_aliyun_tasks.config import ConnectionSettings, Endpoint

log = logging.getLogger(__name__)

STS_VERSION = "2015-04-01"


@dataclass(frozen=True, repr=False)
class Credentials:
    """One snapshot of credentials, used to sign one request."""

    access_key_id: str | None = None
    access_key_secret: str | None = None
    security_token: str | None = None
    bearer_token: str | None = None
    expiration: float | None = None  # epoch seconds, for temporary credentials

    def __repr__(self) -> str:
        kind = "bearer" if self.bearer_token else ("sts" if self.security_token else "access_key")
        return f"Credentials(kind={kind!r}, access_key_id={self.access_key_id!r}, secrets=***)"


class CredentialSource:
    """Hands out :class:`Credentials`; refreshing sources cache them until near expiry."""

    name = "static"

    def get(self) -> Credentials:
        raise NotImplementedError

    async def aget(self) -> Credentials:
        raise NotImplementedError

    def invalidate(self) -> None:
        """Forget cached temporary credentials (the server said they expired)."""

    @property
    def refreshable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class StaticSource(CredentialSource):
    """An AccessKey pair, an STS token triple, or a bearer token."""

    def __init__(self, credentials: Credentials, name: str = "access_key") -> None:
        self._credentials = credentials
        self.name = name

    def get(self) -> Credentials:
        return self._credentials

    async def aget(self) -> Credentials:
        return self._credentials


def _refresh_margin(lifetime: float) -> float:
    """Refresh this many seconds before expiry: a quarter of the lifetime, at most 15 min."""
    return min(900.0, max(lifetime * 0.25, 0.5))


class _CachingSource(CredentialSource):
    """Caches temporary credentials; refreshes them once near expiry (single flight)."""

    def __init__(self) -> None:
        self._cached: Credentials | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        self._alocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def refreshable(self) -> bool:
        return True

    def _fresh(self) -> Credentials | None:
        c = self._cached
        if c is None:
            return None
        if c.expiration is None:
            return c
        margin = _refresh_margin(c.expiration - self._fetched_at)
        return c if time.time() < c.expiration - margin else None

    def invalidate(self) -> None:
        self._cached = None

    def _store(self, creds: Credentials, fetched_at: float) -> Credentials:
        self._cached, self._fetched_at = creds, fetched_at
        return creds

    def get(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            started = time.time()
            return self._store(self._fetch(), started)

    async def aget(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        loop = asyncio.get_running_loop()
        lock = self._alocks.get(loop)
        if lock is None:
            lock = self._alocks[loop] = asyncio.Lock()
        async with lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            started = time.time()
            return self._store(await self._afetch(), started)

    def _fetch(self) -> Credentials:
        raise NotImplementedError

    async def _afetch(self) -> Credentials:
        raise NotImplementedError


def parse_sts_credentials(body: Any) -> Credentials:
    """The ``Credentials`` object of an AssumeRole* response."""
    c = body.get("Credentials") if isinstance(body, dict) else None
    if not isinstance(c, dict):
        raise BadResponseError("STS response has no 'Credentials' object")
    fields = ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")
    bad = [f for f in fields if not isinstance(c.get(f), str) or not c[f].strip()]
    if bad:
        # Name the fields only: their values are secrets.
        raise BadResponseError(f"STS response has missing or empty credential fields: {', '.join(bad)}")
    try:
        expiration = float(calendar.timegm(time.strptime(c["Expiration"], "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        raise BadResponseError("STS response has a malformed Expiration") from None
    return Credentials(
        access_key_id=c["AccessKeyId"],
        access_key_secret=c["AccessKeySecret"],
        security_token=c["SecurityToken"],
        expiration=expiration,
    )


class AssumeRoleSource(_CachingSource):
    """``ram_role_arn``: AssumeRole with a base AccessKey (or STS token), through this package's client."""

    name = "ram_role_arn"

    def __init__(self, settings: ConnectionSettings, sts_endpoint: Endpoint) -> None:
        super().__init__()
        from airflow_aliyun_tasks.client import AlibabaCloudClient

        base = Credentials(
            access_key_id=settings.access_key_id,
            access_key_secret=settings.access_key_secret,
            security_token=settings.security_token,
        )
        self._client = AlibabaCloudClient(
            StaticSource(base),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            correct_clock_skew=settings.correct_clock_skew,
        )
        self._endpoint = sts_endpoint
        query = {
            "RoleArn": settings.role_arn,
            "RoleSessionName": settings.role_session_name,
            "DurationSeconds": str(settings.role_session_expiration),
            "Policy": settings.policy,
            "ExternalId": settings.external_id,
        }
        self._query = {k: v for k, v in query.items() if v}

    def _request(self) -> Any:
        from airflow_aliyun_tasks.client import Call

        return Call(
            endpoint=self._endpoint,
            action="AssumeRole",
            version=STS_VERSION,
            method="POST",
            path="/",
            query=self._query,
        )

    def _fetch(self) -> Credentials:
        return parse_sts_credentials(self._client.send(self._request()).body)

    async def _afetch(self) -> Credentials:
        return parse_sts_credentials((await self._client.asend(self._request())).body)


class OidcRoleSource(_CachingSource):
    """``oidc_role_arn``: AssumeRoleWithOIDC with the token file read afresh at every refresh."""

    name = "oidc_role_arn"

    def __init__(self, settings: ConnectionSettings, sts_endpoint: Endpoint) -> None:
        super().__init__()
        from airflow_aliyun_tasks.client import AlibabaCloudClient

        self._client = AlibabaCloudClient(
            StaticSource(Credentials(), name="anonymous"),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            correct_clock_skew=settings.correct_clock_skew,
        )
        self._endpoint = sts_endpoint
        self._token_file = settings.oidc_token_file_path or ""
        query = {
            "RoleArn": settings.role_arn,
            "OIDCProviderArn": settings.oidc_provider_arn,
            "RoleSessionName": settings.role_session_name,
            "DurationSeconds": str(settings.role_session_expiration),
            "Policy": settings.policy,
        }
        self._query = {k: v for k, v in query.items() if v}

    def _token(self) -> str:
        try:
            with open(self._token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise ConfigurationError(
                "oidc_token_file_path", f"cannot read the OIDC token file: {exc.strerror}"
            ) from None
        if not token:
            raise ConfigurationError("oidc_token_file_path", "the OIDC token file is empty")
        return token

    def _request(self, token: str) -> Any:
        from airflow_aliyun_tasks.client import Call

        return Call(
            endpoint=self._endpoint,
            action="AssumeRoleWithOIDC",
            version=STS_VERSION,
            method="POST",
            path="/",
            query={**self._query, "OIDCToken": token},
            signer="none",
        )

    def _fetch(self) -> Credentials:
        return parse_sts_credentials(self._client.send(self._request(self._token())).body)

    async def _afetch(self) -> Credentials:
        token = await asyncio.to_thread(self._token)
        return parse_sts_credentials((await self._client.asend(self._request(token))).body)


def import_credentials_library() -> Any:
    """Import ``alibabacloud_credentials`` (lazily) and quiet its import-time log handlers."""
    import alibabacloud_credentials.client as cred_client

    # The library attaches StreamHandlers to its "credentials" logger at import, and its refresh
    # failures log the response body, which may hold credentials. Silence it: failures reach the
    # user as this package's own (secret-free) errors.
    library_log = logging.getLogger("credentials")
    library_log.handlers.clear()
    library_log.addHandler(logging.NullHandler())
    library_log.propagate = False
    return cred_client


class LibrarySource(CredentialSource):
    """``ecs_ram_role``, ``credentials_uri`` and ``default``: ``alibabacloud_credentials`` providers.

    The library caches and refreshes temporary credentials itself.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.name = settings.auth_type
        self._settings = settings
        self._last: Credentials | None = None
        self._client = self._build()

    def _build(self) -> Any:
        settings = self._settings
        cred_client = import_credentials_library()
        from alibabacloud_credentials.models import Config

        timeout_ms = int(settings.timeout * 1000)
        if settings.auth_type == "default":
            return cred_client.Client()
        if settings.auth_type == "ecs_ram_role":
            return cred_client.Client(
                Config(type="ecs_ram_role", role_name=settings.role_name, timeout=timeout_ms)
            )
        if settings.auth_type == "credentials_uri":
            return cred_client.Client(
                Config(
                    type="credentials_uri",
                    credentials_uri=settings.credentials_uri,
                    timeout=timeout_ms,
                    connect_timeout=timeout_ms,
                )
            )
        raise ConfigurationError(  # pragma: no cover - guarded by build_credential_source
            "auth_type", f"{settings.auth_type!r} is not a library auth type"
        )

    def invalidate(self) -> None:
        """The server refused the library's cached credentials: a new library client fetches
        them afresh on the next call (the library has no way to drop its cache)."""
        try:
            self._client = self._build()
        except Exception as exc:
            raise _library_error(self.name, exc) from None

    @property
    def refreshable(self) -> bool:
        return True

    @staticmethod
    def _convert(model: Any) -> Credentials:
        return Credentials(
            access_key_id=model.access_key_id or None,
            access_key_secret=model.access_key_secret or None,
            security_token=model.security_token or None,
            bearer_token=getattr(model, "bearer_token", None) or None,
        )

    def _unchanged(self, creds: Credentials) -> Credentials:
        """The previous snapshot while the library hands out the same credentials: what the
        client prepared for it (the request signer) stays valid until they change."""
        last = self._last
        if last is not None and last == creds:
            return last
        self._last = creds
        return creds

    def get(self) -> Credentials:
        try:
            return self._unchanged(self._convert(self._client.get_credential()))
        except Exception as exc:
            raise _library_error(self.name, exc) from None

    async def aget(self) -> Credentials:
        try:
            return self._unchanged(self._convert(await self._client.get_credential_async()))
        except Exception as exc:
            raise _library_error(self.name, exc) from None


def _library_error(name: str, exc: Exception) -> AuthenticationError:
    # The library's messages may quote the response body it could not use, and that body may
    # hold credentials: keep only what comes before the first brace or quote (URL, status).
    text = str(exc)
    for mark in ("{", "'", '"', "result:"):
        text = text.split(mark, 1)[0]
    return AuthenticationError(
        http_status=0,
        code="CredentialsUnavailable",
        message=f"{name} credentials could not be obtained: {type(exc).__name__}: {text.strip()[:200]}",
    )


def build_credential_source(settings: ConnectionSettings, sts_endpoint: Endpoint) -> CredentialSource:
    """The credential source of a validated connection."""
    t = settings.auth_type
    if t == "access_key":
        return StaticSource(
            Credentials(settings.access_key_id, settings.access_key_secret), name="access_key"
        )
    if t == "sts":
        return StaticSource(
            Credentials(settings.access_key_id, settings.access_key_secret, settings.security_token),
            name="sts",
        )
    if t == "bearer":
        return StaticSource(Credentials(bearer_token=settings.bearer_token), name="bearer")
    if t == "ram_role_arn":
        return AssumeRoleSource(settings, sts_endpoint)
    if t == "oidc_role_arn":
        return OidcRoleSource(settings, sts_endpoint)
    return LibrarySource(settings)
