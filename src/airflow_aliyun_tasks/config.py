"""The ``aliyun`` connection, parsed and validated into :class:`ConnectionSettings`.

Everything wrong with a connection is found here, before any request, as a
:class:`~airflow_aliyun_tasks.errors.ConfigurationError` that names the field.

Fields: ``login`` is the AccessKey ID, ``password`` the AccessKey Secret; everything else is an
extra. The extras are described once, on the fields of :class:`ConnectionSettings` (and of
:class:`NetworkSettings`, and the registry's endpoint and id-default extras): each field carries
an :class:`Extra` that says how the extra is read and checked, how the connection form and the
docs show it, which auth types use it and whether it keys the per-connection client cache.
:data:`EXTRAS` lists them in the form's order; the parser (:func:`parse_connection`), the
accepted keys (:data:`EXTRA_FIELDS`), the form (``get_provider_info.CONN_FIELDS``), the cache key
(:meth:`ConnectionSettings.fingerprint`) and the docs' connection table are made from it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal
from urllib.parse import SplitResult, quote, unquote, urlsplit

from airflow_aliyun_tasks.errors import ConfigurationError
from airflow_aliyun_tasks.services import (
    HOST_LABEL_RE,
    SERVICES,
    IdParam,
    connection_defaults,
    validate_id,
)

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

#: A region id such as ``cn-hangzhou`` (the connection's, a task's, a console link's).
REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+){1,4}$")
_ROLE_ARN_RE = re.compile(r"^acs:ram::[0-9]+:role/[A-Za-z0-9._@\-/]+$")
_OIDC_ARN_RE = re.compile(r"^acs:ram::[0-9]+:oidc-provider/[A-Za-z0-9._\-]+$")
_SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9._@\-]{2,64}$")

#: The JSON type of an extra's value, as the connection form declares it.
Kind = Literal["string", "integer", "number", "boolean", "object"]


@dataclass(frozen=True)
class Extra:
    """One extra of the ``aliyun`` connection.

    :param name: the key in the connection's extra.
    :param label: the connection form's label.
    :param description: what the extra is; :attr:`help` adds the auth types, bounds and default
        (the form's and the docs' text).
    :param kind: the value's type: ``"string"`` (stripped; empty means absent), ``"integer"``,
        ``"number"`` (within ``minimum`` .. ``maximum``), ``"boolean"`` (``true``/``false``,
        ``1``/``0``, ``yes``/``no``) or ``"object"`` (a JSON object, or its text; empty means
        absent).
    :param default: the value when the extra is absent or empty.
    :param choices: the values a string may take (``auth_type``, matched case-insensitively).
    :param check: validates a present value, once its kind is read, and returns what the
        settings hold (an :class:`Endpoint` for an endpoint extra, a :class:`ProxyURL`...).
    :param secret: masked in the form (``format: password``) and left out of reprs.
    :param auth_types: the auth types that use the extra; empty: every connection.
    :param fingerprint: whether the extra keys the per-process client cache
        (:meth:`ConnectionSettings.fingerprint`): every extra that changes the client's
        credentials or its requests must. Those the hook applies per call (a service's
        endpoint, the defaults of ids) do not, so that a change to them keeps the client and
        its cached temporary credentials.
    :param required: every connection must set it (``region_id``); the form starts with
        ``example`` filled in.
    :param example: a value shown as the form's placeholder.
    :param form: shown in the connection form; an extra left out of it is still accepted (from
        the extra's JSON, an environment variable or a secrets backend).
    :param expands: the value, once checked, is a mapping of other extras of its family to their
        values (``endpoints``: one object for every service's endpoint); an extra given both
        ways is an error that names both.
    """

    name: str
    label: str
    description: str
    kind: Kind = "string"
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    check: Callable[[str, Any], Any] | None = None
    secret: bool = False
    auth_types: tuple[str, ...] = ()
    fingerprint: bool = True
    required: bool = False
    example: str = ""
    form: bool = True
    expands: bool = False

    @property
    def bounds(self) -> tuple[float, float]:
        """``(minimum, maximum)`` of a number: every number extra has both."""
        if self.minimum is None or self.maximum is None:
            raise TypeError(f"the {self.kind} extra {self.name!r} needs a minimum and a maximum")
        return self.minimum, self.maximum

    @property
    def help(self) -> str:
        """The description with the bounds and the default: the form's and the docs' text."""
        text = self.description + (" Required." if self.required else "")
        if self.auth_types:
            text = f"For {_listed(self.auth_types)}: {text}"
        if self.minimum is not None and self.maximum is not None:
            text += f" {self.minimum:g} to {self.maximum:g}."
        if self.default is not None:
            text += f" Default: {_shown(self.default)}."
        return text

    def read(self, extra: Mapping[str, Any]) -> Any:
        """This extra's value in ``extra``, read as its kind, checked, or its default."""
        value: Any
        if self.kind == "boolean":
            value = _bool(extra, self.name, self.default)
        elif self.kind == "integer":
            value = _int(extra, self.name, self.default, *self.bounds)
        elif self.kind == "number":
            value = _number(extra, self.name, self.default, *self.bounds)
        elif self.kind == "object":
            value = _object(extra, self.name)
        else:
            value = _str(extra, self.name)
            if value is None:
                if self.required:
                    raise ConfigurationError(self.name, f"is required (for example {self.example})")
                return self.default
            if self.choices:
                value = _choice(self, value)
        if value is not None and self.check is not None:
            value = self.check(self.name, value)
        return value


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


def _listed(words: tuple[str, ...]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return f"{', '.join(words[:-1])} and {words[-1]}" if len(words) > 1 else words[0]


def _shown(value: Any) -> str:
    """A default as the form and the docs write it: ``true``, ``10``, ``access_key``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}"
    return str(value)


# ------------------------------------------------------------------------------- reading one value


def _str(extra: Mapping[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(key, f"must be a string, got {type(value).__name__}")
    return value.strip() or None


def _int(extra: Mapping[str, Any], key: str, default: int | None, lo: float, hi: float) -> int | None:
    number = _number(extra, key, default, lo=lo, hi=hi)
    if number is None:
        return None
    if not float(number).is_integer():
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


def _number(extra: Mapping[str, Any], key: str, default: float | None, lo: float, hi: float) -> float | None:
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


def _object(extra: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A JSON object extra: an object, or its JSON text; empty (``""``, ``{}``, ``null``): absent."""
    value = extra.get(key)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigurationError(key, "must be a JSON object") from None
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(key, f"must be a JSON object, got {type(value).__name__}")
    return dict(value) or None


def _choice(extra: Extra, value: str) -> str:
    chosen = value.lower()
    if chosen not in extra.choices:
        raise ConfigurationError(
            extra.name,
            f"unknown {extra.name.replace('_', ' ')} {chosen!r} (expected one of: {', '.join(extra.choices)})",
        )
    return chosen


# ------------------------------------------------------------------------- checks of single values


def check_region(name: str, region_id: Any) -> str:
    """``region_id`` if it is a region id such as ``cn-hangzhou``."""
    if not region_id:
        raise ConfigurationError(name, "is required (for example cn-hangzhou)")
    if not isinstance(region_id, str) or not REGION_RE.match(region_id.strip()):
        raise ConfigurationError(name, f"{region_id!r} is not a region id such as cn-hangzhou")
    return region_id.strip()


def _role_arn(name: str, value: str) -> str:
    if not _ROLE_ARN_RE.match(value):
        raise ConfigurationError(name, f"{value!r} is not a RAM role ARN (acs:ram::<uid>:role/<name>)")
    return value


def _oidc_provider_arn(name: str, value: str) -> str:
    if not _OIDC_ARN_RE.match(value):
        raise ConfigurationError(
            name, f"{value!r} is not an OIDC provider ARN (acs:ram::<uid>:oidc-provider/<name>)"
        )
    return value


def _session_name(name: str, value: str) -> str:
    if not _SESSION_NAME_RE.match(value):
        raise ConfigurationError(name, "must be 2-64 characters of letters, digits and . @ - _")
    return value


def _user_agent(name: str, value: str) -> str:
    if len(value) > 256 or not all(32 <= ord(c) < 127 for c in value):
        raise ConfigurationError(name, "must be at most 256 printable ASCII characters")
    return value


def _ca_bundle(name: str, value: str) -> str:
    return check_ca_bundle(name, os.path.expanduser(value))


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


# ------------------------------------------------------------------------------------- the table

# Keys of a field's metadata: the extra it holds, the extras of a dict it holds (by extra name),
# the settings class it nests.
_EXTRA = "aliyun.extra"
_FAMILY = "aliyun.extras"
_NESTED = "aliyun.settings"


def _extra(label: str, description: str, **options: Any) -> Any:
    """A settings field that holds one extra, named after the field; ``options`` are the other
    fields of its :class:`Extra`. A secret one stays out of the settings' repr."""
    spec = Extra("", label, description, **options)
    if spec.required:
        return field(repr=not spec.secret, metadata={_EXTRA: spec})
    return field(default=spec.default, repr=not spec.secret, metadata={_EXTRA: spec})


def _placeholders(template: str) -> str:
    """``dlf.{region_id}.aliyuncs.com`` as the form shows it: ``dlf.<region>.aliyuncs.com``."""
    return re.sub(r"\{(\w+)\}", lambda m: "<region>" if m[1] == "region_id" else f"<{m[1]}>", template)


def _id_default(name: str, param: IdParam) -> Extra:
    """The extra that supplies ``param``'s default (``pds_domain_id``), checked as that id is."""

    def check(key: str, value: str) -> str:
        validate_id(key, value, integer=param.integer)
        if param.location == "host" and not HOST_LABEL_RE.match(value):
            raise ConfigurationError(
                key, f"{value!r} is not a valid {param.name} (it is part of a host name)"
            )
        return value

    return Extra(
        name=name,
        label=param.label or name,
        description=f"Default {param.name} of the calls that pass none"
        + (f", for example {param.example}." if param.example else "."),
        check=check,
        example=param.example,
        # The hook fills the ids of each call in: the client does not depend on them.
        fingerprint=False,
    )


#: The extras that supply a default for an id of a service (``pds_domain_id``), from the registry.
_ID_DEFAULTS: tuple[Extra, ...] = tuple(_id_default(name, p) for name, p in connection_defaults().items())

#: The endpoint overrides: one per service of the registry, and STS's.
_ENDPOINTS: tuple[Extra, ...] = (
    *(
        Extra(
            name=spec.endpoint_extra,
            label=f"{spec.label} endpoint",
            description=f"A host or URL that replaces {_placeholders(spec.endpoint)} (plain http:// only "
            f'for a loopback host); the same as "{spec.name}" in endpoints.',
            check=parse_endpoint,
            # The hook resolves a service's endpoint for each call: the client does not depend on it.
            fingerprint=False,
            form=False,
        )
        for spec in SERVICES.values()
    ),
    Extra(
        name="sts_endpoint",
        label="STS endpoint",
        description="A host or URL that replaces sts.<region>.aliyuncs.com (plain http:// only for a "
        'loopback host); the same as "sts" in endpoints.',
        check=parse_endpoint,
        # The client's credential source calls STS there (AssumeRole, AssumeRoleWithOIDC).
        fingerprint=True,
        form=False,
    ),
)

#: The endpoint override extras, in registry order, STS's last.
ENDPOINT_EXTRAS: tuple[str, ...] = tuple(e.name for e in _ENDPOINTS)

#: The names the ``endpoints`` extra takes: every service of the registry, and ``sts``.
ENDPOINT_NAMES: tuple[str, ...] = (*SERVICES, "sts")


def _endpoint_map(name: str, value: Mapping[str, Any]) -> dict[str, Endpoint]:
    """The ``endpoints`` extra: service name (or ``sts``) -> host or URL, as the per-service
    extras by extra name (``{"dlf_endpoint": Endpoint(...)}``)."""
    out: dict[str, Endpoint] = {}
    for key, host in value.items():
        if key not in ENDPOINT_NAMES:
            raise ConfigurationError(
                name, f"{key!r} is not a service (expected some of: {', '.join(ENDPOINT_NAMES)})"
            )
        if host is None or host == "":
            continue
        if not isinstance(host, str):
            raise ConfigurationError(f"{name}.{key}", f"must be a host or URL, got {type(host).__name__}")
        out[f"{key}_endpoint"] = parse_endpoint(f"{name}.{key}", host)
    return out


#: The connection form's one field for every endpoint: a JSON object of service name -> host.
_ENDPOINT_MAP = Extra(
    name="endpoints",
    label="Endpoints",
    description="Hosts or URLs that replace the services' default endpoints: a JSON object of service "
    f"name ({', '.join(ENDPOINT_NAMES)}) to host or URL, for example "
    '{"dataworks": "dataworks-vpc.cn-hangzhou.aliyuncs.com", "sts": "sts-vpc.cn-hangzhou.aliyuncs.com"} '
    "(plain http:// only for a loopback host). The <service>_endpoint extras do the same one by one.",
    kind="object",
    check=_endpoint_map,
    expands=True,
    # What it holds for STS keys the cache through sts_endpoint, which it fills in.
    fingerprint=False,
)


@dataclass(frozen=True)
class NetworkSettings:
    """How a connection reaches the network: the connection's proxies (they win over the
    environment's), its ``NO_PROXY`` list, whether the environment's ``HTTPS_PROXY`` /
    ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` and ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` count
    (``trust_env``), and a private CA bundle. Certificate verification is always on."""

    # _extra() makes a dataclasses.field (RUF009 knows the immutable annotations only).
    https_proxy: ProxyURL | None = _extra(  # noqa: RUF009
        "HTTPS proxy",
        "Proxy URL for https endpoints, http://[user:password@]host:port (tunnelled with CONNECT: "
        "TLS stays end to end). Wins over the HTTPS_PROXY environment variable.",
        check=parse_proxy,
        secret=True,  # the URL may hold the proxy's password
    )
    http_proxy: ProxyURL | None = _extra(  # noqa: RUF009
        "HTTP proxy",
        "Proxy URL for plain http endpoints. Wins over HTTP_PROXY.",
        check=parse_proxy,
        secret=True,
    )
    no_proxy: str | None = _extra(
        "No proxy",
        "Comma-separated hosts, domains (.example.com) or * that go direct. Wins over NO_PROXY.",
        check=parse_no_proxy,
    )
    trust_env: bool = _extra(
        "Trust environment",
        "Read HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, SSL_CERT_FILE and SSL_CERT_DIR "
        "from the environment.",
        kind="boolean",
        default=True,
    )
    ca_bundle: str | None = _extra(
        "CA bundle",
        "Path of a PEM file of the CA certificates to trust (a private CA, a TLS-inspecting proxy).",
        check=_ca_bundle,
    )


_ROLES = ("ram_role_arn", "oidc_role_arn")


@dataclass(frozen=True)
class ConnectionSettings:
    """A validated ``aliyun`` connection. Its repr never shows a secret.

    The fields are the connection's extras, in the form's order (``login`` and ``password``
    aside); see :class:`Extra` for what each one's description says.
    """

    region_id: str = _extra(
        "Region",
        "Region id, for example cn-hangzhou.",
        check=check_region,
        required=True,
        example="cn-hangzhou",
    )
    auth_type: str = _extra(
        "Auth type",
        "How to authenticate: access_key, sts, ram_role_arn, ecs_ram_role, oidc_role_arn, "
        "credentials_uri, bearer (PDS access token) or default (the credentials library's chain).",
        choices=tuple(AUTH_TYPES),
        default="access_key",
    )
    #: ``login``.
    access_key_id: str | None = None
    #: ``password``.
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = _extra(
        "STS security token",
        "the STS security token (for ram_role_arn, of the base credentials).",
        secret=True,
        auth_types=("sts", "ram_role_arn"),
    )
    role_arn: str | None = _extra(
        "RAM role ARN",
        "acs:ram::<uid>:role/<name>.",
        check=_role_arn,
        auth_types=_ROLES,
        example="acs:ram::1234567890123456:role/airflow",
    )
    role_session_name: str = _extra(
        "Role session name",
        "the name of the assumed role's session.",
        check=_session_name,
        default="airflow-aliyun-tasks",
        auth_types=_ROLES,
    )
    external_id: str | None = _extra(
        "External id",
        "the external id, when the role's trust policy asks for one.",
        auth_types=("ram_role_arn",),
    )
    policy: str | None = _extra(
        "Session policy",
        "a policy JSON that narrows the assumed role.",
        auth_types=_ROLES,
    )
    role_session_expiration: int = _extra(
        "Role session seconds",
        "lifetime of the assumed role's credentials, in seconds.",
        kind="integer",
        default=3600,
        minimum=900,
        maximum=43200,
        auth_types=_ROLES,
    )
    role_name: str | None = _extra(
        "ECS RAM role name",
        "the RAM role name; empty means the instance's role.",
        auth_types=("ecs_ram_role",),
    )
    oidc_provider_arn: str | None = _extra(
        "OIDC provider ARN",
        "acs:ram::<uid>:oidc-provider/<name>.",
        check=_oidc_provider_arn,
        auth_types=("oidc_role_arn",),
    )
    oidc_token_file_path: str | None = _extra(
        "OIDC token file",
        "path of the OIDC token file.",
        auth_types=("oidc_role_arn",),
    )
    credentials_uri: str | None = _extra(
        "Credentials URI",
        "URL that serves temporary credentials.",
        check=parse_endpoint_url,
        auth_types=("credentials_uri",),
    )
    bearer_token: str | None = _extra(
        "PDS access token",
        "a PDS user access token.",
        secret=True,
        auth_types=("bearer",),
    )
    #: Defaults of ids, by extra name (``{"pds_domain_id": "bj1"}``).
    id_defaults: dict[str, str] = field(default_factory=dict, metadata={_FAMILY: _ID_DEFAULTS})
    #: Endpoint overrides, by extra name (``{"dlf_endpoint": Endpoint(...)}``): from the
    #: ``endpoints`` extra and the ``<service>_endpoint`` extras.
    endpoints: dict[str, Endpoint] = field(
        default_factory=dict, metadata={_FAMILY: (_ENDPOINT_MAP, *_ENDPOINTS)}
    )
    use_vpc_endpoints: bool = _extra(
        "Use VPC endpoints",
        "Use the services' VPC endpoints instead of the public ones.",
        kind="boolean",
        default=False,
        # It picks STS's host too, where the client's credential source calls STS.
        fingerprint=True,
    )
    timeout: float = _extra(
        "Timeout (s)",
        "Seconds per HTTP attempt.",
        kind="number",
        default=10.0,
        minimum=0.1,
        maximum=300,
    )
    #: Seconds to set up a connection (TCP, proxy tunnel, TLS); ``None``: ``timeout``.
    connect_timeout: float | None = _extra(
        "Connect timeout (s)",
        "Seconds to set up a connection (TCP, proxy tunnel and TLS); empty: the timeout.",
        kind="number",
        minimum=0.1,
        maximum=300,
    )
    network: NetworkSettings = field(default_factory=NetworkSettings, metadata={_NESTED: NetworkSettings})
    #: Appended to the package's ``User-Agent``.
    user_agent: str | None = _extra(
        "User-Agent suffix",
        "Appended to the package's User-Agent header (airflow-aliyun-tasks/<version> "
        "apache-airflow/<version> Python/<version>).",
        check=_user_agent,
    )
    max_retries: int = _extra(
        "Max retries",
        "Retries of throttled, failed or timed-out requests.",
        kind="integer",
        default=3,
        minimum=0,
        maximum=10,
    )
    correct_clock_skew: bool = _extra(
        "Correct clock skew",
        "When the server rejects the request time, sign with the server's clock from then on.",
        kind="boolean",
        default=False,
    )

    def with_region(self, region_id: str | None) -> ConnectionSettings:
        """These settings for another region (a task's own ``region_id``), validated."""
        if region_id is None or region_id == self.region_id:
            return self
        return replace(self, region_id=check_region("region_id", region_id))

    def fingerprint(self) -> tuple[Any, ...]:
        """A value equal for equal settings as far as the client depends on them: keys the
        per-process client cache (and so its credential source). Every field counts but the
        extras whose :attr:`Extra.fingerprint` is false."""
        return tuple(_fingerprint(self))


def _extras_of(cls: type[Any]) -> Iterator[Extra]:
    for f in fields(cls):
        if _EXTRA in f.metadata:
            yield replace(f.metadata[_EXTRA], name=f.name)
        elif _FAMILY in f.metadata:
            yield from f.metadata[_FAMILY]
        elif _NESTED in f.metadata:
            yield from _extras_of(f.metadata[_NESTED])


def _build(cls: type[Any], values: Mapping[str, Any], **other: Any) -> Any:
    """An instance of ``cls`` from the extras' parsed ``values`` (by extra name) and ``other``."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if _EXTRA in f.metadata:
            kwargs[f.name] = values[f.name]
        elif _FAMILY in f.metadata:
            kwargs[f.name] = _family(f.metadata[_FAMILY], values)
        elif _NESTED in f.metadata:
            kwargs[f.name] = _build(f.metadata[_NESTED], values)
    return cls(**kwargs, **other)


def _family(family: tuple[Extra, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    """A family's values by extra name; an extra that :attr:`Extra.expands` contributes the
    extras it holds, and one given both ways is an error naming both."""
    out: dict[str, Any] = {}
    via: dict[str, str] = {}
    for extra in family:
        value = values[extra.name]
        if value is None:
            continue
        for name, item in value.items() if extra.expands else ((extra.name, value),):
            if name in out:
                first, second = sorted((via[name], extra.name))
                raise ConfigurationError(
                    second,
                    f"the {name.removesuffix('_endpoint')} endpoint is given twice, in {first} and in "
                    f"{second}: give it once",
                )
            out[name], via[name] = item, extra.name
    return out


def _fingerprint(settings: Any) -> Iterator[Any]:
    for f in fields(settings):
        value = getattr(settings, f.name)
        if _EXTRA in f.metadata:
            if f.metadata[_EXTRA].fingerprint:
                yield value
        elif _FAMILY in f.metadata:
            yield tuple(value.get(e.name) for e in f.metadata[_FAMILY] if e.fingerprint)
        elif _NESTED in f.metadata:
            yield from _fingerprint(value)
        else:  # login and password
            yield value


#: Every extra of the connection, in the form's order.
EXTRAS: tuple[Extra, ...] = tuple(_extras_of(ConnectionSettings))

#: Every extra the connection accepts; anything else is rejected (typos must not go unnoticed).
EXTRA_FIELDS: frozenset[str] = frozenset(e.name for e in EXTRAS)


def sts_host(region_id: str, *, vpc: bool, environ: Mapping[str, str] | None = None) -> str:
    """STS's host as the credentials library picks it, for a connection in ``region_id``:
    ``sts[-vpc].<region>.aliyuncs.com``, the region being ``ALIBABA_CLOUD_STS_REGION`` when set
    (else the connection's), VPC when the connection says so or
    ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED`` is ``true``."""
    env = os.environ if environ is None else environ
    region = (env.get("ALIBABA_CLOUD_STS_REGION") or "").strip()
    if not region or not REGION_RE.match(region):
        region = region_id
    vpc = vpc or (env.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") or "").strip().lower() == "true"
    return f"{'sts-vpc' if vpc else 'sts'}.{region}.aliyuncs.com"


_LOGIN_RE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def parse_connection(
    *, login: str | None, password: str | None, extra: Mapping[str, Any] | None
) -> ConnectionSettings:
    """Validate an ``aliyun`` connection's fields into :class:`ConnectionSettings`.

    Unknown extras are refused; then each extra is read, checked or defaulted in
    :data:`EXTRAS`' order; then the fields the auth type needs must be there.
    """
    extra = dict(extra or {})
    unknown = sorted(set(extra) - EXTRA_FIELDS)
    if unknown:
        raise ConfigurationError(
            unknown[0],
            f"is not a known extra of an aliyun connection (known: {', '.join(sorted(EXTRA_FIELDS))})",
        )
    values = {e.name: e.read(extra) for e in EXTRAS}
    values["login"] = (login or "").strip() or None
    values["password"] = (password or "").strip() or None

    auth_type = values["auth_type"]
    for required in AUTH_TYPES[auth_type]:
        if not values[required]:
            label = {"login": "login (AccessKey ID)", "password": "password (AccessKey Secret)"}.get(
                required, required
            )
            raise ConfigurationError(required, f"{label} is required for auth_type {auth_type!r}")
    if values["login"] and not _LOGIN_RE.match(values["login"]):
        raise ConfigurationError("login", "the AccessKey ID may only contain letters, digits, '.', '_', '-'")

    settings: ConnectionSettings = _build(
        ConnectionSettings,
        values,
        access_key_id=values["login"],
        access_key_secret=values["password"],
    )
    return settings
