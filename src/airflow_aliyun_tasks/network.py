"""Which way a request goes: direct, or through a proxy; with the default CAs or a private bundle.

A connection's :class:`~airflow_aliyun_tasks.config.NetworkSettings` and (when it trusts the
environment, the default) the process environment resolve into a :class:`Router`, which gives
each endpoint its :class:`Route`:

- proxies: the connection's ``https_proxy`` / ``http_proxy`` extras, else the environment's
  ``https_proxy`` / ``http_proxy``, else ``all_proxy`` (lower case first, then upper case, as
  curl reads them); none for a host the ``no_proxy`` extra (else the environment's
  ``no_proxy``) covers;
- CAs: the ``ca_bundle`` extra, else ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, else certifi's bundle.
  Verification is never switched off.

An endpoint with neither a proxy nor custom CAs has no route (``None``): the client sends it
through its lean transports. Anything else goes through httpx's own transports, which tunnel
HTTPS through a proxy with ``CONNECT`` (TLS end to end with the service).
"""

from __future__ import annotations

import functools
import os
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from airflow_aliyun_tasks._transport import ssl_context
from airflow_aliyun_tasks.config import Endpoint, NetworkSettings, ProxyURL, parse_no_proxy, parse_proxy
from airflow_aliyun_tasks.errors import ConfigurationError

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "Route",
    "Router",
    "async_transport",
    "environment_key",
    "sync_transport",
]

#: The environment variables a trusting connection reads.
ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def environment_key(
    network: NetworkSettings, environ: Mapping[str, str] | None = None
) -> tuple[str | None, ...]:
    """The environment variables ``network`` reads, as they are now (empty when it trusts none):
    part of the key of a cached client, so a changed environment gets a new one."""
    if not network.trust_env:
        return ()
    env = os.environ if environ is None else environ
    return tuple(env.get(name) for name in ENVIRONMENT_VARIABLES)


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name.lower()) or env.get(name.upper())
    return value.strip() or None if value else None


@dataclass(frozen=True)
class Route:
    """How requests to one endpoint go: through ``proxy`` (or direct) and trusting ``cafile`` /
    ``capath`` (or certifi's bundle). Keys the httpx client that sends them."""

    proxy: ProxyURL | None = None
    cafile: str | None = None
    capath: str | None = None

    def __repr__(self) -> str:
        via = self.proxy.display if self.proxy else "direct"
        return f"Route({via}, cafile={self.cafile!r}, capath={self.capath!r})"

    @property
    def via(self) -> str:
        """`` via proxy http://host:port`` (no password), or nothing."""
        return f" via proxy {self.proxy.display}" if self.proxy else ""

    def ssl_context(self) -> ssl.SSLContext:
        return _ssl_context(self.cafile, self.capath)


@functools.lru_cache(maxsize=16)
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile is None and capath is None:
        return ssl_context()
    try:
        ctx = ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        name = "ca_bundle" if capath is None else "SSL_CERT_DIR"
        raise ConfigurationError(name, f"cannot load the CA certificates: {exc}") from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


#: The standard library's ``NO_PROXY`` matching (what ``requests`` uses too); not in its stubs.
_bypass_environment: Any = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009


class Router:
    """The routes of one connection's endpoints (see the module's description)."""

    def __init__(self, network: NetworkSettings, environ: Mapping[str, str] | None = None) -> None:
        env: Mapping[str, str] = (os.environ if environ is None else environ) if network.trust_env else {}
        every = _env(env, "all_proxy")
        https = network.https_proxy
        if https is None and (text := _env(env, "https_proxy") or every):
            https = parse_proxy("HTTPS_PROXY", text)
        http = network.http_proxy
        if http is None and (text := _env(env, "http_proxy") or every):
            http = parse_proxy("HTTP_PROXY", text)
        no_proxy = network.no_proxy
        if no_proxy is None and (text := _env(env, "no_proxy")):
            no_proxy = parse_no_proxy("NO_PROXY", text)
        self.proxies = {"https": https, "http": http}
        self.no_proxy = no_proxy or ""
        self.cafile = network.ca_bundle or (env.get("SSL_CERT_FILE") or None)
        self.capath = None if network.ca_bundle else (env.get("SSL_CERT_DIR") or None)
        #: No proxy and no custom CA anywhere: every endpoint goes direct (the lean transports).
        self.direct = https is None and http is None and self.cafile is None and self.capath is None
        self._routes: dict[Endpoint, Route | None] = {}

    def route(self, endpoint: Endpoint) -> Route | None:
        """The route of ``endpoint``; ``None`` when it goes direct with the default CAs."""
        if self.direct:  # no proxy, no custom CA: no lookup (an Endpoint's hash is a call)
            return None
        try:
            return self._routes[endpoint]
        except KeyError:
            pass
        proxy = self.proxies.get(endpoint.scheme)
        if proxy is not None and self.no_proxy and self._bypass(endpoint):
            proxy = None
        custom_tls = endpoint.scheme == "https" and (self.cafile is not None or self.capath is not None)
        route = Route(proxy, self.cafile, self.capath) if proxy is not None or custom_tls else None
        if len(self._routes) < 256:
            self._routes[endpoint] = route
        return route

    def _bypass(self, endpoint: Endpoint) -> bool:
        host = endpoint.host
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        return bool(
            _bypass_environment(host, {"no": self.no_proxy})
            or _bypass_environment(f"{host}:{port}", {"no": self.no_proxy})
        )


def _proxy(route: Route) -> httpx.Proxy | None:
    if route.proxy is None:
        return None
    if route.proxy.scheme == "https":  # a TLS proxy: its certificate is verified as well
        return httpx.Proxy(route.proxy.url, ssl_context=route.ssl_context())
    return httpx.Proxy(route.proxy.url)


def sync_transport(route: Route, limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's own sync transport for ``route`` (proxy with ``CONNECT``, the route's CAs)."""
    return httpx.HTTPTransport(
        verify=route.ssl_context(), proxy=_proxy(route), limits=limits, trust_env=False
    )


def async_transport(route: Route, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's own async transport for ``route``."""
    return httpx.AsyncHTTPTransport(
        verify=route.ssl_context(), proxy=_proxy(route), limits=limits, trust_env=False
    )
