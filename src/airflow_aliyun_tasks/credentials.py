"""Credential types: what the client signs with, and the sources that hand them out.

A leaf module (it imports nothing of the package but errors): the client depends on it, and the
sources that need the client (STS, the credentials library) live in
:mod:`airflow_aliyun_tasks.credential_sources`, built on it.

Nothing here logs or reprs a secret.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from dataclasses import dataclass

__all__ = [
    "CredentialSource",
    "Credentials",
    "StaticSource",
]


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
        # Cache: the last temporary credentials (one set per source, so per connection per
        # process); replaced once within the refresh margin of their expiry, dropped by
        # invalidate() when the server refuses them.
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
