"""Credential sources of a connection, built once per connection per process.

- ``access_key``, ``sts`` and ``bearer`` are static (:class:`~airflow_aliyun_tasks.credentials.StaticSource`).
- ``ram_role_arn`` and ``oidc_role_arn`` call STS ``AssumeRole`` / ``AssumeRoleWithOIDC`` with this
  package's own signer and HTTP client. The official library's providers for these two always
  call STS over https whatever endpoint is configured, and refresh synchronously under a thread
  lock, also from async code; ours honours the connection's ``sts_endpoint`` (so the emulator can
  stand in for STS) and refresh without blocking the event loop.
- ``ecs_ram_role``, ``credentials_uri`` and ``default`` (the library's chain) use
  ``alibabacloud_credentials``, imported only when such a connection is used (it costs about
  250 ms and pulls in aiohttp).

Built on the client (:mod:`airflow_aliyun_tasks.client`), which itself only knows the credential
types of :mod:`airflow_aliyun_tasks.credentials`: no import cycle. Nothing here logs or reprs a
secret.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_aliyun_tasks.client import Call, Signer, build_client
from airflow_aliyun_tasks.credentials import Credentials, CredentialSource, StaticSource, _CachingSource
from airflow_aliyun_tasks.errors import AuthenticationError, BadResponseError, ConfigurationError

if TYPE_CHECKING:
    from airflow_aliyun_tasks.config import ConnectionSettings, Endpoint

__all__ = [
    "STS_VERSION",
    "AssumeRoleSource",
    "LibrarySource",
    "OidcRoleSource",
    "build_credential_source",
    "import_credentials_library",
    "parse_sts_credentials",
]

log = logging.getLogger(__name__)

STS_VERSION = "2015-04-01"


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


class _StsSource(_CachingSource):
    """Temporary credentials from an STS ``AssumeRole*`` call made with this package's client,
    signed with ``base`` (anonymous for ``AssumeRoleWithOIDC``, which the OIDC token authorizes)."""

    action: ClassVar[str]
    signer: ClassVar[Signer] = "acs3"

    def __init__(
        self,
        settings: ConnectionSettings,
        sts_endpoint: Endpoint,
        base: StaticSource,
        query: Mapping[str, str | None],
    ) -> None:
        super().__init__()
        # The connection's own client settings (network route, timeouts, retries, User-Agent).
        self._client = build_client(settings, base)
        self._endpoint = sts_endpoint
        self._query = {k: v for k, v in query.items() if v}

    def _request(
        self,
        extra: Mapping[str, str] | None = None,
        *,
        method: str = "POST",
        head: Mapping[str, str] | None = None,
    ) -> Call:
        """The STS call: ``head``, the source's parameters, then ``extra``, in the query."""
        return Call(
            endpoint=self._endpoint,
            action=self.action,
            version=STS_VERSION,
            method=method,
            path="/",
            query={**(head or {}), **self._query, **(extra or {})},
            signer=self.signer,
        )


class AssumeRoleSource(_StsSource):
    """``ram_role_arn``: AssumeRole with a base AccessKey (or STS token), through this package's client."""

    name = "ram_role_arn"
    action = "AssumeRole"

    def __init__(self, settings: ConnectionSettings, sts_endpoint: Endpoint) -> None:
        base = Credentials(
            access_key_id=settings.access_key_id,
            access_key_secret=settings.access_key_secret,
            security_token=settings.security_token,
        )
        super().__init__(
            settings,
            sts_endpoint,
            StaticSource(base),
            {
                "RoleArn": settings.role_arn,
                "RoleSessionName": settings.role_session_name,
                "DurationSeconds": str(settings.role_session_expiration),
                "Policy": settings.policy,
                "ExternalId": settings.external_id,
            },
        )

    def _fetch(self) -> Credentials:
        return parse_sts_credentials(self._client.send(self._request()).body)

    async def _afetch(self) -> Credentials:
        return parse_sts_credentials((await self._client.asend(self._request())).body)


class OidcRoleSource(_StsSource):
    """``oidc_role_arn``: AssumeRoleWithOIDC with the token file read afresh at every refresh.

    Sent as the credentials library sends it: an unsigned RPC-style ``GET`` whose query holds
    ``Action``, ``Format=JSON``, ``Version``, ``DurationSeconds``, ``RoleArn``,
    ``OIDCProviderArn``, ``OIDCToken``, ``RoleSessionName``, ``Timestamp`` (and ``Policy``).
    """

    name = "oidc_role_arn"
    action = "AssumeRoleWithOIDC"
    signer = "rpc"

    def __init__(self, settings: ConnectionSettings, sts_endpoint: Endpoint) -> None:
        super().__init__(
            settings,
            sts_endpoint,
            StaticSource(Credentials(), name="anonymous"),
            {
                "RoleArn": settings.role_arn,
                "OIDCProviderArn": settings.oidc_provider_arn,
                "RoleSessionName": settings.role_session_name,
                "DurationSeconds": str(settings.role_session_expiration),
                "Policy": settings.policy,
            },
        )
        self._token_file = settings.oidc_token_file_path or ""

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

    def _rpc_request(self, token: str) -> Call:
        # The RPC style's own parameters come first, as the credentials library sends them.
        return self._request(
            {"OIDCToken": token, "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            method="GET",
            head={"Action": self.action, "Format": "JSON", "Version": STS_VERSION},
        )

    def _fetch(self) -> Credentials:
        return parse_sts_credentials(self._client.send(self._rpc_request(self._token())).body)

    async def _afetch(self) -> Credentials:
        token = await asyncio.to_thread(self._token)
        return parse_sts_credentials((await self._client.asend(self._rpc_request(token))).body)


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
        connect_ms = int((settings.connect_timeout or settings.timeout) * 1000)
        if settings.auth_type in ("ecs_ram_role", "default"):
            _warn_metadata_proxy(settings.auth_type)
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
                    connect_timeout=connect_ms,
                    # The connection's proxy for the URI, as far as the library takes one (it
                    # reads the environment's HTTPS_PROXY / HTTP_PROXY itself otherwise).
                    proxy=_library_proxy(settings),
                )
            )
        raise ConfigurationError(  # pragma: no cover - guarded by build_credential_source
            "auth_type", f"{settings.auth_type!r} is not a library auth type"
        )

    def invalidate(self) -> None:
        """The server refused the library's cached credentials: the next call fetches them afresh.

        The library client is kept (a new one would start new threads: the ECS provider starts a
        scheduler thread per instance, which nothing stops): the cached values of its refreshing
        suppliers are dropped instead. A client with no such supplier (static credentials) has
        nothing to refresh."""
        self._last = None
        _drop_cached_values(self._client)

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


def _warn_metadata_proxy(auth_type: str) -> None:
    """The library sends its ECS metadata requests (``http://100.100.100.200``) through
    ``HTTP_PROXY`` / ``http_proxy`` when the environment sets one, whatever ``NO_PROXY`` says:
    say so (the URL is not logged: it may hold a password)."""
    if os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy"):
        log.warning(
            "auth_type %s: HTTP_PROXY is set, and alibabacloud-credentials sends its ECS metadata "
            "requests (100.100.100.200) through it, ignoring NO_PROXY. Unset HTTP_PROXY for this "
            "process and give the connection an https_proxy extra instead.",
            auth_type,
        )


def _drop_cached_values(root: Any, depth: int = 0, seen: set[int] | None = None) -> int:
    """Forget the cached value of every ``RefreshCachedSupplier`` reachable from ``root`` (the
    library client, its provider, the default chain's providers); returns how many."""
    seen = set() if seen is None else seen
    if depth > 4 or id(root) in seen or isinstance(root, str | bytes | int | float | bool | type(None)):
        return 0
    seen.add(id(root))
    if hasattr(root, "_cached_value") and hasattr(root, "_refresh_callable"):
        root._cached_value = None
        return 1
    if isinstance(root, list | tuple):
        children: list[Any] = list(root)
    else:
        try:
            children = list(vars(root).values())
        except TypeError:
            return 0
    return sum(_drop_cached_values(child, depth + 1, seen) for child in children)


def _library_proxy(settings: ConnectionSettings) -> str | None:
    """The proxy URL of the connection's ``credentials_uri``, or None (no proxy, or bypassed)."""
    from urllib.parse import urlsplit

    from airflow_aliyun_tasks.config import Endpoint
    from airflow_aliyun_tasks.network import Router

    parts = urlsplit(settings.credentials_uri or "")
    router = Router(settings.network)
    route = router.route(Endpoint(parts.scheme, parts.hostname or "", parts.port))
    return route.proxy.url if route is not None and route.proxy is not None else None


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
