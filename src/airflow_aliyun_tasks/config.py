"""The ``aliyun`` connection, parsed and validated into :class:`ConnectionSettings`.

Everything wrong with a connection is found here, before any request, as a
:class:`~airflow_aliyun_tasks.errors.ConfigurationError` that names the field.

Fields: ``login`` is the AccessKey ID, ``password`` the AccessKey Secret; everything else is an
extra (see :data:`EXTRA_FIELDS`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

from airflow_aliyun_tasks.errors import ConfigurationError
from airflow_aliyun_tasks.services import HOST_LABEL_RE, SERVICES, connection_defaults, validate_id

#: ``auth_type`` values: the credentials library's type names, plus ``default`` (its chain).
AUTH_TYPES: dict[str, tuple[str, ...]] = {
    # auth type -> required fields (``login``/``password`` are the AccessKey pair)
    "access_key": ("login", "password"),
    "sts": ("login", "password", "security_token"),
    "ram_role_arn": ("login", "password", "role_arn"),
    "ecs_ram_role": (),
    "oidc_role_arn": ("role_arn", "oidc_provider_arn", "oidc_token_file_path"),
    "credentials_uri": ("credentials_uri",),
    "bearer": ("bearer_token",),
    "default": (),
}

#: The endpoint overrides: one per service of the registry, and STS's.
ENDPOINT_EXTRAS: tuple[str, ...] = (*(spec.endpoint_extra for spec in SERVICES.values()), "sts_endpoint")

#: Extras that supply a default for an id of a service (``pds_domain_id``), from the registry.
ID_DEFAULT_EXTRAS: tuple[str, ...] = tuple(connection_defaults())

#: The extras of how the connection reaches the network: proxies, their exceptions, whether the
#: environment's proxy and CA variables count, and a private CA bundle.
NETWORK_EXTRAS: tuple[str, ...] = ("https_proxy", "http_proxy", "no_proxy", "trust_env", "ca_bundle")

#: Every extra the connection accepts; anything else is rejected (typos must not go unnoticed).
EXTRA_FIELDS: frozenset[str] = frozenset(
    {
        "region_id",
        "auth_type",
        "security_token",
        "role_arn",
        "role_session_name",
        "external_id",
        "policy",
        "role_session_expiration",
        "role_name",
        "oidc_provider_arn",
        "oidc_token_file_path",
        "credentials_uri",
        "bearer_token",
        "use_vpc_endpoints",
        "timeout",
        "connect_timeout",
        "max_retries",
        "correct_clock_skew",
        "user_agent",
        *NETWORK_EXTRAS,
        *ENDPOINT_EXTRAS,
        *ID_DEFAULT_EXTRAS,
    }
)

SECRET_FIELDS = frozenset({"password", "security_token", "bearer_token"})
#: Extras whose value may hold a secret inside it (a proxy URL's password): the form masks them.
SECRET_BEARING_FIELDS = frozenset({"https_proxy", "http_proxy"})

_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+){1,4}$")
_ROLE_ARN_RE = re.compile(r"^acs:ram::[0-9]+:role/[A-Za-z0-9._@\-/]+$")
_OIDC_ARN_RE = re.compile(r"^acs:ram::[0-9]+:oidc-provider/[A-Za-z0-9._\-]+$")
_SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9._@\-]{2,64}$")


@dataclass(frozen=True)
class Endpoint:
    """A service endpoint: scheme, host and optional port."""

    scheme: str
    host: str
    port: int | None = None

    @property
    def netloc(self) -> str:
        """``host[:port]``, as sent in the ``Host`` header and signed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _valid_hostname(host: str) -> bool:
    if is_loopback(host):
        return True
    if len(host) > 253:
        return False
    return all(HOST_LABEL_RE.match(label) for label in host.rstrip(".").split("."))


def _split_url(name: str, value: str, default_scheme: str, invalid: str) -> tuple[SplitResult, int | None]:
    """``value`` (a URL, or a bare host meaning ``default_scheme``) split, and its port.
    ``invalid`` is the error's text; it never quotes the value (a proxy URL may hold a password)."""
    text = value.strip()
    if not text:
        raise ConfigurationError(name, "must not be empty")
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise ConfigurationError(name, "must not contain whitespace or control characters")
    try:
        parts = urlsplit(text if "://" in text else f"{default_scheme}://{text}")
        return parts, parts.port
    except ValueError:
        raise ConfigurationError(name, invalid) from None


def parse_endpoint(name: str, value: str) -> Endpoint:
    """Parse an endpoint given as a host (``dlf-vpc.cn-hangzhou.aliyuncs.com``) or a URL.

    A bare host means https. Plain ``http://`` is refused unless the host is loopback (the
    emulator): credentials must not cross a network in clear.
    """
    parts, port = _split_url(name, value, "https", "is not a valid URL or host")
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if parts.username or parts.password:
        raise ConfigurationError(name, "must not contain user information")
    if scheme not in ("http", "https"):
        raise ConfigurationError(name, f"scheme must be https (or http for a loopback host), got {scheme!r}")
    if not host or not _valid_hostname(host):
        raise ConfigurationError(name, f"has no valid host name: {host!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(name, "must be a host or scheme://host[:port], without a path or query")
    if scheme == "http" and not is_loopback(host):
        raise ConfigurationError(
            name, f"plain http:// is only allowed for a loopback host, not {host!r}; use https://"
        )
    return Endpoint(scheme, host, port)


@dataclass(frozen=True)
class ProxyURL:
    """An HTTP(S) proxy: ``scheme://[user:password@]host:port``. Its repr and :attr:`display`
    never show the password."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The proxy as logs and errors name it: ``http://host:port``, no user information."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The full URL, credentials included (percent-encoded): for the HTTP client only."""
        if self.username is None:
            return self.display
        user = quote(self.username, safe="")
        auth = f"{user}:{quote(self.password, safe='')}" if self.password is not None else user
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}@{host}:{self.port}"

    def __str__(self) -> str:
        return self.display


def parse_proxy(name: str, value: str) -> ProxyURL:
    """Parse a proxy URL (``http://[user:password@]host[:port]``; ``https://`` for a TLS proxy).

    A proxy may be ``http://`` to any host: what goes to Alibaba Cloud through it is tunnelled
    (``CONNECT``) and stays TLS end to end. Errors never quote the URL (it may hold a password).
    """
    parts, port = _split_url(
        name, value, "http", "is not a valid proxy URL (scheme://[user:password@]host:port)"
    )
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(name, f"proxy scheme must be http or https, got {scheme!r}")
    host = parts.hostname or ""
    if not host or not _valid_hostname(host):
        raise ConfigurationError(name, "has no valid proxy host name")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(name, "must be scheme://[user:password@]host:port, without a path or query")
    return ProxyURL(
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def parse_no_proxy(name: str, value: str) -> str:
    """A ``NO_PROXY`` list as curl reads it: host names, domain suffixes, IP addresses, ``*``."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        if any(c.isspace() or ord(c) < 32 for c in item):
            raise ConfigurationError(name, f"{item!r} is not a host, domain or address")
    return ",".join(items)


def check_ca_bundle(name: str, path: str) -> str:
    """``path`` names a readable PEM file of CA certificates that TLS can load."""
    import ssl

    if not os.path.isfile(path):
        raise ConfigurationError(name, f"{path!r} is not a file (give the path of a PEM CA bundle)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise ConfigurationError(name, f"cannot read {path!r}: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise ConfigurationError(name, f"{path!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(name, f"{path!r} is not a valid PEM CA bundle: {exc}") from None
    return path


@dataclass(frozen=True)
class NetworkSettings:
    """How a connection reaches the network: the connection's proxies (they win over the
    environment's), its ``NO_PROXY`` list, whether the environment's ``HTTPS_PROXY`` /
    ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` and ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` count
    (``trust_env``), and a private CA bundle. Certificate verification is always on."""

    https_proxy: ProxyURL | None = None
    http_proxy: ProxyURL | None = None
    no_proxy: str | None = None
    trust_env: bool = True
    ca_bundle: str | None = None


@dataclass(frozen=True)
class ConnectionSettings:
    """A validated ``aliyun`` connection. Its repr never shows a secret."""

    region_id: str
    auth_type: str = "access_key"
    access_key_id: str | None = None
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    role_arn: str | None = None
    role_session_name: str = "airflow-aliyun-tasks"
    external_id: str | None = None
    policy: str | None = None
    role_session_expiration: int = 3600
    role_name: str | None = None
    oidc_provider_arn: str | None = None
    oidc_token_file_path: str | None = None
    credentials_uri: str | None = None
    #: Defaults of ids, by extra name (``{"pds_domain_id": "bj1"}``; see :data:`ID_DEFAULT_EXTRAS`).
    id_defaults: dict[str, str] = field(default_factory=dict)
    use_vpc_endpoints: bool = False
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    timeout: float = 10.0
    max_retries: int = 3
    correct_clock_skew: bool = False
    #: Seconds to set up a connection (TCP, proxy tunnel, TLS); defaults to ``timeout``.
    connect_timeout: float | None = None
    #: Appended to the package's ``User-Agent``.
    user_agent: str | None = None
    network: NetworkSettings = field(default_factory=NetworkSettings)

    def with_region(self, region_id: str | None) -> ConnectionSettings:
        """These settings for another region (a task's own ``region_id``), validated."""
        if region_id is None or region_id == self.region_id:
            return self
        return replace(self, region_id=check_region("region_id", region_id))

    def fingerprint(self) -> tuple[Any, ...]:
        """A value equal for equal settings: keys the per-process credential provider cache."""
        return (
            self.auth_type,
            self.access_key_id,
            self.access_key_secret,
            self.security_token,
            self.bearer_token,
            self.role_arn,
            self.role_session_name,
            self.external_id,
            self.policy,
            self.role_session_expiration,
            self.role_name,
            self.oidc_provider_arn,
            self.oidc_token_file_path,
            self.credentials_uri,
            self.endpoints.get("sts_endpoint"),
            self.use_vpc_endpoints,  # picks STS's host when sts_endpoint is not set
            self.region_id,
            self.timeout,
            self.max_retries,
            self.correct_clock_skew,
            self.connect_timeout,
            self.user_agent,
            self.network,
        )


def _str(extra: Mapping[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(key, f"must be a string, got {type(value).__name__}")
    return value.strip() or None


def _int(extra: Mapping[str, Any], key: str, default: int, *, lo: int, hi: int) -> int:
    number = float(_number(extra, key, default, lo=lo, hi=hi))
    if not number.is_integer():
        raise ConfigurationError(key, f"must be a whole number, got {extra.get(key)!r}")
    return int(number)


def _bool(extra: Mapping[str, Any], key: str, default: bool) -> bool:
    value = extra.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConfigurationError(key, f"must be true or false, got {value!r}")


def _number(extra: Mapping[str, Any], key: str, default: float, *, lo: float, hi: float) -> float:
    value = extra.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(key, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not lo <= number <= hi:
        raise ConfigurationError(key, f"must be between {lo:g} and {hi:g}, got {value!r}")
    return number


def check_region(name: str, region_id: Any) -> str:
    """``region_id`` if it is a region id such as ``cn-hangzhou``."""
    if not region_id:
        raise ConfigurationError(name, "is required (for example cn-hangzhou)")
    if not isinstance(region_id, str) or not _REGION_RE.match(region_id.strip()):
        raise ConfigurationError(name, f"{region_id!r} is not a region id such as cn-hangzhou")
    return region_id.strip()


def sts_host(region_id: str, *, vpc: bool, environ: Mapping[str, str] | None = None) -> str:
    """STS's host as the credentials library picks it, for a connection in ``region_id``:
    ``sts[-vpc].<region>.aliyuncs.com``, the region being ``ALIBABA_CLOUD_STS_REGION`` when set
    (else the connection's), VPC when the connection says so or
    ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED`` is ``true``."""
    env = os.environ if environ is None else environ
    region = (env.get("ALIBABA_CLOUD_STS_REGION") or "").strip()
    if not region or not _REGION_RE.match(region):
        region = region_id
    vpc = vpc or (env.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") or "").strip().lower() == "true"
    return f"{'sts-vpc' if vpc else 'sts'}.{region}.aliyuncs.com"


def _network(extra: Mapping[str, Any]) -> NetworkSettings:
    proxies = {
        key: parse_proxy(key, value) for key in ("https_proxy", "http_proxy") if (value := _str(extra, key))
    }
    no_proxy = _str(extra, "no_proxy")
    ca_bundle = _str(extra, "ca_bundle")
    return NetworkSettings(
        https_proxy=proxies.get("https_proxy"),
        http_proxy=proxies.get("http_proxy"),
        no_proxy=parse_no_proxy("no_proxy", no_proxy) if no_proxy else None,
        trust_env=_bool(extra, "trust_env", True),
        ca_bundle=check_ca_bundle("ca_bundle", os.path.expanduser(ca_bundle)) if ca_bundle else None,
    )


def _user_agent(extra: Mapping[str, Any]) -> str | None:
    text = _str(extra, "user_agent")
    if text and (len(text) > 256 or not all(32 <= ord(c) < 127 for c in text)):
        raise ConfigurationError("user_agent", "must be at most 256 printable ASCII characters")
    return text


def parse_connection(
    *, login: str | None, password: str | None, extra: Mapping[str, Any] | None
) -> ConnectionSettings:
    """Validate an ``aliyun`` connection's fields into :class:`ConnectionSettings`."""
    extra = dict(extra or {})
    unknown = sorted(set(extra) - EXTRA_FIELDS)
    if unknown:
        raise ConfigurationError(
            unknown[0],
            f"is not a known extra of an aliyun connection (known: {', '.join(sorted(EXTRA_FIELDS))})",
        )

    region_id = check_region("region_id", _str(extra, "region_id"))

    auth_type = (_str(extra, "auth_type") or "access_key").lower()
    if auth_type not in AUTH_TYPES:
        raise ConfigurationError(
            "auth_type", f"unknown auth type {auth_type!r} (expected one of: {', '.join(AUTH_TYPES)})"
        )

    values: dict[str, str | None] = {
        "login": (login or "").strip() or None,
        "password": (password or "").strip() or None,
    }
    for key in (
        "security_token",
        "bearer_token",
        "role_arn",
        "role_session_name",
        "external_id",
        "policy",
        "role_name",
        "oidc_provider_arn",
        "oidc_token_file_path",
        "credentials_uri",
    ):
        values[key] = _str(extra, key)

    for required in AUTH_TYPES[auth_type]:
        if not values[required]:
            label = {"login": "login (AccessKey ID)", "password": "password (AccessKey Secret)"}.get(
                required, required
            )
            raise ConfigurationError(required, f"{label} is required for auth_type {auth_type!r}")

    if values["login"] and not re.match(r"^[A-Za-z0-9._\-]{1,128}$", values["login"] or ""):
        raise ConfigurationError("login", "the AccessKey ID may only contain letters, digits, '.', '_', '-'")
    role_arn = values["role_arn"]
    if role_arn and not _ROLE_ARN_RE.match(role_arn):
        raise ConfigurationError(
            "role_arn", f"{role_arn!r} is not a RAM role ARN (acs:ram::<uid>:role/<name>)"
        )
    oidc_arn = values["oidc_provider_arn"]
    if oidc_arn and not _OIDC_ARN_RE.match(oidc_arn):
        raise ConfigurationError(
            "oidc_provider_arn",
            f"{oidc_arn!r} is not an OIDC provider ARN (acs:ram::<uid>:oidc-provider/<name>)",
        )
    session_name = values["role_session_name"] or "airflow-aliyun-tasks"
    if not _SESSION_NAME_RE.match(session_name):
        raise ConfigurationError(
            "role_session_name", "must be 2-64 characters of letters, digits and . @ - _"
        )
    uri = values["credentials_uri"]
    if uri:
        parse_endpoint_url("credentials_uri", uri)
    id_defaults = _id_defaults(extra)

    endpoints = {key: parse_endpoint(key, str(extra[key])) for key in ENDPOINT_EXTRAS if extra.get(key)}

    return ConnectionSettings(
        region_id=region_id,
        auth_type=auth_type,
        access_key_id=values["login"],
        access_key_secret=values["password"],
        security_token=values["security_token"],
        bearer_token=values["bearer_token"],
        role_arn=role_arn,
        role_session_name=session_name,
        external_id=values["external_id"],
        policy=values["policy"],
        role_session_expiration=_int(extra, "role_session_expiration", 3600, lo=900, hi=43200),
        role_name=values["role_name"],
        oidc_provider_arn=oidc_arn,
        oidc_token_file_path=values["oidc_token_file_path"],
        credentials_uri=uri,
        id_defaults=id_defaults,
        use_vpc_endpoints=_bool(extra, "use_vpc_endpoints", False),
        endpoints=endpoints,
        timeout=_number(extra, "timeout", 10.0, lo=0.1, hi=300),
        max_retries=_int(extra, "max_retries", 3, lo=0, hi=10),
        correct_clock_skew=_bool(extra, "correct_clock_skew", False),
        connect_timeout=_number(extra, "connect_timeout", 0.0, lo=0.1, hi=300) or None,
        user_agent=_user_agent(extra),
        network=_network(extra),
    )


def _id_defaults(extra: Mapping[str, Any]) -> dict[str, str]:
    """The id defaults the connection sets, each validated as the id it stands for."""
    out: dict[str, str] = {}
    for key, param in connection_defaults().items():
        value = _str(extra, key)
        if not value:
            continue
        validate_id(key, value, integer=param.integer)
        if param.location == "host" and not HOST_LABEL_RE.match(value):
            raise ConfigurationError(
                key, f"{value!r} is not a valid {param.name} (it is part of a host name)"
            )
        out[key] = value
    return out


def parse_endpoint_url(name: str, value: str) -> str:
    """Validate a full http(s) URL (a path is allowed); http only for loopback hosts."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ConfigurationError(name, f"is not a valid URL: {exc}") from None
    if parts.username or parts.password:
        raise ConfigurationError(name, "must not contain user information")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(name, f"must be an http(s) URL, got scheme {parts.scheme!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(name, "plain http:// is only allowed for a loopback host; use https://")
    return value
