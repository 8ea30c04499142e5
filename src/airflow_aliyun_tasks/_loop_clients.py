"""The shared HTTP clients requests go out on: one sync client per process, one async client per
event loop, and the same again per route (a proxy, private CAs). Each entry holds the sender the
package's client calls (:mod:`airflow_aliyun_tasks._transport.senders`), chosen once, when the
entry is built: the lean transport itself for the direct clients, an httpx adapter for a route's.

Why shared: a triggerer runs thousands of waits, and each poll on a kept-alive connection of one
pool costs no TCP or TLS handshake; the service sees a handful of connections, not one per wait.

Why one per event loop: an asyncio connection (its transport, the futures it resolves, its
read-timeout timer) belongs to the loop that opened it and fails when used from another. A
process runs loops one after another (each ``asyncio.run``: a deferrable task on a worker, a
test) or side by side in threads: each loop gets its own pool, keyed on the loop, weakly.

Why closed by an async generator at loop shutdown: closing an async client takes its loop
(``await client.aclose()``), and the one signal a library gets that a loop is ending is
``loop.shutdown_asyncgens()``, which ``asyncio.run`` and ``asyncio.Runner`` call before they
close the loop (the triggerer runs in ``asyncio.run``): it finalizes, in the loop, every async
generator the loop saw start. So each client gets a generator suspended at its ``yield``, whose
``finally`` closes the client and drops its entry. The thread's asyncgen hooks are swapped for
that first step only: the loop's ``firstiter`` registers the generator with the loop, and the
finalizer is ours, which refers to the loop weakly (the loop's own finalizer would keep the loop
alive through the entry keyed on it) and does nothing once the loop is closed. The entry keeps
its generator: dropped, the generator would be finalized, and its client closed, at once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import NamedTuple

import httpx

from airflow_aliyun_tasks._transport import (
    DEFAULT_LIMITS,
    AsyncSender,
    HttpxAsyncSender,
    HttpxSyncSender,
    LeanAsyncTransport,
    LeanSyncTransport,
    SyncSender,
)
from airflow_aliyun_tasks.network import Route, async_transport, sync_transport

__all__ = [
    "aclose_shared_client",
    "async_sender",
    "close_sync_clients",
    "route_async_client",
    "route_sync_client",
    "shared_async_client",
    "shared_sync_client",
    "sync_sender",
]


class _SyncEntry(NamedTuple):
    client: httpx.Client
    sender: SyncSender


class _AsyncEntry(NamedTuple):
    client: httpx.AsyncClient
    sender: AsyncSender
    closer: AsyncGenerator[None, None]


def _new_sync_client() -> tuple[httpx.Client, SyncSender]:
    """The process's direct client, on the lean transport, which requests call directly (the
    environment's proxies are the connection's to apply, redirects are not followed)."""
    transport = LeanSyncTransport(DEFAULT_LIMITS)
    return httpx.Client(
        transport=transport, limits=DEFAULT_LIMITS, trust_env=False, follow_redirects=False
    ), transport


def _new_async_client() -> tuple[httpx.AsyncClient, AsyncSender]:
    """A loop's direct client, on the lean transport, which requests call directly."""
    transport = LeanAsyncTransport(DEFAULT_LIMITS)
    return httpx.AsyncClient(
        transport=transport, limits=DEFAULT_LIMITS, trust_env=False, follow_redirects=False
    ), transport


def _new_route_sync_client(route: Route) -> tuple[httpx.Client, SyncSender]:
    client = httpx.Client(
        transport=sync_transport(route, DEFAULT_LIMITS), trust_env=False, follow_redirects=False
    )
    return client, HttpxSyncSender(client)


def _new_route_async_client(route: Route) -> tuple[httpx.AsyncClient, AsyncSender]:
    transport = async_transport(route, DEFAULT_LIMITS)
    client = httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
    return client, HttpxAsyncSender(client)


# --------------------------------------------------------------------------- sync

#: Cache: the process's direct sync client. Not keyed: one per process. Replaced when it is
#: closed (the next use builds a new one); its lean transport drops its pooled connections in
#: a forked child.
_sync: _SyncEntry | None = None
#: Cache: the process's sync client of each route. Keyed on the route; kept for the process (a
#: handful of routes), replaced when closed.
_route_sync_clients: dict[Route, _SyncEntry] = {}
_sync_lock = threading.Lock()


def _sync_entry(route: Route | None) -> _SyncEntry:
    global _sync
    entry = _sync if route is None else _route_sync_clients.get(route)
    if entry is not None and not entry.client.is_closed:
        return entry
    with _sync_lock:  # httpx.Client is thread-safe; building one is not
        entry = _sync if route is None else _route_sync_clients.get(route)
        if entry is None or entry.client.is_closed:
            if route is None:
                entry = _sync = _SyncEntry(*_new_sync_client())
            else:
                entry = _route_sync_clients[route] = _SyncEntry(*_new_route_sync_client(route))
        return entry


def sync_sender(route: Route | None = None) -> SyncSender:
    """The sender of ``route``'s sync client (``None``: the process's direct client)."""
    return _sync_entry(route).sender


def shared_sync_client() -> httpx.Client:
    """The process-wide direct sync client (httpx.Client is thread-safe)."""
    return _sync_entry(None).client


def route_sync_client(route: Route) -> httpx.Client:
    """The process-wide sync client of ``route``."""
    return _sync_entry(route).client


def close_sync_clients() -> None:
    """Close the process's sync clients, direct and routed (for tests and orderly shutdowns)."""
    global _sync
    with _sync_lock:
        entries = [*([] if _sync is None else [_sync]), *_route_sync_clients.values()]
        _sync = None
        _route_sync_clients.clear()
    for entry in entries:
        entry.client.close()


# --------------------------------------------------------------------------- async

#: Cache: each event loop's direct client. Keyed on the loop, weakly (but a client that has sent
#: a request refers to its loop: its transport keeps the loop's read watch); the entry is dropped
#: when the loop shuts down its async generators or by :func:`aclose_shared_client`. A client
#: closed otherwise (a caller closed it) is replaced on the loop's next use.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncEntry] = (
    weakref.WeakKeyDictionary()
)
#: Cache: each event loop's client of each route. Keyed on the loop (weakly) and the route;
#: dropped as :data:`_async_clients` entries are.
_route_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Route, _AsyncEntry]] = (
    weakref.WeakKeyDictionary()
)


def async_sender(route: Route | None = None) -> AsyncSender:
    """The sender of the running loop's client of ``route`` (``None``: the direct client)."""
    if route is None:  # the hot path: one lookup
        entry = _async_clients.get(asyncio.get_running_loop())
        if entry is not None and not entry.client.is_closed:
            return entry.sender
    return _async_entry(route).sender


def shared_async_client() -> httpx.AsyncClient:
    """The running loop's direct client: one keep-alive pool per loop."""
    return _async_entry(None).client


def route_async_client(route: Route) -> httpx.AsyncClient:
    """The running loop's client of ``route``."""
    return _async_entry(route).client


def _async_entry(route: Route | None) -> _AsyncEntry:
    loop = asyncio.get_running_loop()
    if route is None:
        entry = _async_clients.get(loop)
        if entry is None or entry.client.is_closed:
            entry = _async_clients[loop] = _at_loop_shutdown(loop, _new_async_client(), entry)
        return entry
    routes = _route_async_clients.get(loop)
    if routes is None:
        routes = _route_async_clients[loop] = {}
    entry = routes.get(route)
    if entry is None or entry.client.is_closed:
        entry = routes[route] = _at_loop_shutdown(loop, _new_route_async_client(route), entry)
    return entry


async def _closer(
    loop_ref: weakref.ref[asyncio.AbstractEventLoop], client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        try:
            if not client.is_closed:
                await client.aclose()
        finally:
            _forget(loop_ref(), client)


def _forget(loop: asyncio.AbstractEventLoop | None, client: httpx.AsyncClient) -> None:
    """Drop ``client``'s entries of ``loop``: a closed client (its loop shut down) is not kept."""
    if loop is None:
        return
    entry = _async_clients.get(loop)
    if entry is not None and entry.client is client:
        del _async_clients[loop]
    routes = _route_async_clients.get(loop)
    if routes is not None:
        for route, routed in list(routes.items()):
            if routed.client is client:
                del routes[route]
        if not routes:
            _route_async_clients.pop(loop, None)


def _at_loop_shutdown(
    loop: asyncio.AbstractEventLoop,
    built: tuple[httpx.AsyncClient, AsyncSender],
    previous: _AsyncEntry | None,
) -> _AsyncEntry:
    """The entry of a new client of ``loop``, closed when the loop shuts down its async
    generators (see the module's description). ``previous``, the entry it replaces, has its
    generator finished in the loop."""
    client, sender = built
    loop_ref = weakref.ref(loop)
    agen = _closer(loop_ref, client)

    def finalizer(gen: AsyncGenerator[None, None]) -> None:
        # The loop's own finalizer schedules aclose() in the loop; a closed loop cannot.
        owner = loop_ref()
        if owner is not None and not owner.is_closed():
            owner.call_soon_threadsafe(owner.create_task, gen.aclose())

    firstiter, old_finalizer = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    try:
        agen.__anext__().send(None)  # runs to the ``yield``; firstiter registers it with the loop
    except StopIteration:
        pass
    finally:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=old_finalizer)
    if previous is not None:
        loop.create_task(previous.closer.aclose())
    return _AsyncEntry(client, sender, agen)


async def aclose_shared_client() -> None:
    """Close the running loop's clients, direct and routed (for tests and orderly shutdowns)."""
    loop = asyncio.get_running_loop()
    entries = [e for e in (_async_clients.pop(loop, None),) if e is not None]
    entries += _route_async_clients.pop(loop, {}).values()
    for entry in entries:
        await entry.client.aclose()
        await entry.closer.aclose()
