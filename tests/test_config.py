"""Connection parsing (``parse_connection``) and endpoint parsing (``parse_endpoint``): pure, no I/O.

Every invalid connection must be refused with a :class:`ConfigurationError` whose ``field`` names
the offending field, and nothing secret may appear in a repr or an error message.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_aliyun_tasks.config import (
    AUTH_TYPES,
    ENDPOINT_EXTRAS,
    EXTRA_FIELDS,
    EXTRAS,
    REGION_RE,
    ConnectionSettings,
    Endpoint,
    is_loopback,
    parse_connection,
    parse_endpoint,
    parse_endpoint_url,
)
from airflow_aliyun_tasks.errors import AlibabaCloudError, ConfigurationError

AK = "LTAI5tConfigTestKey01"
SECRET = "ConfigTestSecret-0123456789abcdef"
TOKEN = "CAISConfigTestSecurityToken0123456789"
BEARER = "pds-bearer-config-test-token-0123456789"
ROLE_ARN = "acs:ram::1234567890123456:role/airflow"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"


def parse(extra: dict[str, Any] | None = None, *, login: str | None = AK, password: str | None = SECRET):
    base: dict[str, Any] = {"region_id": "cn-hangzhou"}
    base.update(extra or {})
    return parse_connection(
        login=login, password=password, extra={k: v for k, v in base.items() if v is not None}
    )


def refused(field: str, extra: dict[str, Any] | None = None, **kwargs: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        parse(extra, **kwargs)
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, AlibabaCloudError)
    assert isinstance(info.value, ValueError)
    return info.value


# ------------------------------------------------------------------------------------------ defaults


def test_defaults() -> None:
    s = parse()
    assert s.region_id == "cn-hangzhou"
    assert s.auth_type == "access_key"
    assert s.access_key_id == AK
    assert s.access_key_secret == SECRET
    assert s.security_token is None
    assert s.bearer_token is None
    assert s.role_arn is None
    assert s.role_session_name == "airflow-aliyun-tasks"
    assert s.role_session_expiration == 3600
    assert s.use_vpc_endpoints is False
    assert s.endpoints == {}
    assert s.timeout == 10.0
    assert s.max_retries == 3
    assert isinstance(s.max_retries, int)
    assert s.correct_clock_skew is False
    assert s.id_defaults.get("pds_domain_id") is None


def test_none_extra_means_no_extras() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_connection(login=AK, password=SECRET, extra=None)
    assert info.value.field == "region_id"


def test_values_are_stripped_and_auth_type_case_insensitive() -> None:
    s = parse(
        {"region_id": "  cn-shanghai ", "auth_type": " ACCESS_KEY "},
        login=f"  {AK} ",
        password=f" {SECRET}\n",
    )
    assert s.region_id == "cn-shanghai"
    assert s.auth_type == "access_key"
    assert s.access_key_id == AK
    assert s.access_key_secret == SECRET


def test_every_documented_extra_is_accepted() -> None:
    s = parse(
        {
            "auth_type": "ram_role_arn",
            "role_arn": ROLE_ARN,
            "role_session_name": "my.session@x-1",
            "external_id": "ext-1",
            "policy": '{"Version": "1"}',
            "role_session_expiration": "900",
            "role_name": "ecs-role",
            "security_token": TOKEN,
            "pds_domain_id": "bj1",
            "use_vpc_endpoints": True,
            "timeout": "2.5",
            "max_retries": 0,
            "correct_clock_skew": "yes",
            "dlf_endpoint": "dlf-vpc.cn-hangzhou.aliyuncs.com",
            "dataworks_endpoint": "https://dataworks.example.com:8443",
            "mma_endpoint": "http://127.0.0.1:8080",
            "pds_endpoint": "http://localhost",
            "sts_endpoint": "http://[::1]:1",
        }
    )
    assert s.auth_type == "ram_role_arn"
    assert s.role_session_name == "my.session@x-1"
    assert s.role_session_expiration == 900
    assert s.external_id == "ext-1"
    assert s.use_vpc_endpoints is True
    assert s.timeout == 2.5
    assert s.max_retries == 0
    assert s.correct_clock_skew is True
    assert s.id_defaults == {"pds_domain_id": "bj1"}
    assert s.endpoints["dlf_endpoint"] == Endpoint("https", "dlf-vpc.cn-hangzhou.aliyuncs.com")
    assert s.endpoints["dataworks_endpoint"] == Endpoint("https", "dataworks.example.com", 8443)
    assert s.endpoints["mma_endpoint"] == Endpoint("http", "127.0.0.1", 8080)
    assert s.endpoints["pds_endpoint"] == Endpoint("http", "localhost")
    assert s.endpoints["sts_endpoint"].netloc == "[::1]:1"


@pytest.mark.parametrize("as_text", [False, True])
def test_endpoints_extra_sets_every_endpoint_in_one_object(as_text: bool) -> None:
    """The connection form's one field for the endpoints: service name (or sts) -> host or URL;
    an object, or its JSON text (a form or an environment variable may give either)."""
    import json

    value = {
        "dlf": "dlf-vpc.cn-hangzhou.aliyuncs.com",
        "emr_serverless_spark": "http://127.0.0.1:9",
        "sts": "",
    }
    s = parse({"endpoints": json.dumps(value) if as_text else value, "pds_endpoint": "http://localhost"})
    assert s.endpoints == {
        "dlf_endpoint": Endpoint("https", "dlf-vpc.cn-hangzhou.aliyuncs.com"),
        "emr_serverless_spark_endpoint": Endpoint("http", "127.0.0.1", 9),
        "pds_endpoint": Endpoint("http", "localhost"),
    }
    for empty in ("", "  ", {}, "{}", "null", None):
        assert parse({"endpoints": empty}).endpoints == {}


def test_endpoints_extra_and_a_service_extra_for_one_service_is_an_error() -> None:
    err = refused("endpoints", {"endpoints": {"dlf": "dlf.example.com"}, "dlf_endpoint": "dlf.example.org"})
    assert "dlf_endpoint" in str(err)
    assert "endpoints" in str(err)
    assert "given twice" in str(err)
    err = refused(
        "sts_endpoint", {"endpoints": {"sts": "sts.example.com"}, "sts_endpoint": "sts.example.org"}
    )
    assert "endpoints" in str(err)


@pytest.mark.parametrize(
    ("value", "field", "text"),
    [
        ({"ecs": "ecs.example.com"}, "endpoints", "'ecs' is not a service"),
        ({"dlf_endpoint": "x.example.com"}, "endpoints", "is not a service"),
        ({"dlf": 5}, "endpoints.dlf", "must be a host or URL"),
        ({"dlf": "http://example.com"}, "endpoints.dlf", "plain http://"),
        ({"dlf": "https://u:Sup3rS3cretPw@example.com"}, "endpoints.dlf", "user information"),
        (["dlf"], "endpoints", "must be a JSON object"),
        ("{not json", "endpoints", "must be a JSON object"),
        ("[1]", "endpoints", "must be a JSON object"),
    ],
)
def test_endpoints_extra_refused(value: Any, field: str, text: str) -> None:
    err = refused(field, {"endpoints": value})
    assert text in str(err)
    assert "Sup3rS3cretPw" not in str(err)


def test_sts_in_the_endpoints_extra_keys_the_client_cache() -> None:
    base = parse()
    other = parse({"endpoints": {"sts": "http://127.0.0.1:1"}})
    assert other.endpoints["sts_endpoint"] == Endpoint("http", "127.0.0.1", 1)
    assert other.fingerprint() != base.fingerprint()
    assert parse({"sts_endpoint": "http://127.0.0.1:1"}).fingerprint() == other.fingerprint()
    assert parse({"endpoints": {"dlf": "http://127.0.0.1:1"}}).fingerprint() == base.fingerprint()


def test_empty_endpoint_extras_are_ignored() -> None:
    assert parse({"dlf_endpoint": "", "sts_endpoint": None}).endpoints == {}


def test_endpoint_extras_are_read_as_strings() -> None:
    assert parse({"dlf_endpoint": "   "}).endpoints == {}
    err = refused("dlf_endpoint", {"dlf_endpoint": 123})
    assert "must be a string" in str(err)


# ----------------------------------------------------------------------- required fields per auth type

REQUIRED_CASES = [
    # (auth_type, extra that satisfies everything else, login, password, missing field)
    ("access_key", {}, None, SECRET, "login"),
    ("access_key", {}, AK, None, "password"),
    ("access_key", {}, "   ", SECRET, "login"),
    ("access_key", {}, AK, "  ", "password"),
    ("sts", {"security_token": TOKEN}, None, SECRET, "login"),
    ("sts", {"security_token": TOKEN}, AK, None, "password"),
    ("sts", {}, AK, SECRET, "security_token"),
    ("sts", {"security_token": "   "}, AK, SECRET, "security_token"),
    ("ram_role_arn", {"role_arn": ROLE_ARN}, None, SECRET, "login"),
    ("ram_role_arn", {"role_arn": ROLE_ARN}, AK, None, "password"),
    ("ram_role_arn", {}, AK, SECRET, "role_arn"),
    (
        "oidc_role_arn",
        {"oidc_provider_arn": OIDC_ARN, "oidc_token_file_path": "/var/run/token"},
        None,
        None,
        "role_arn",
    ),
    ("oidc_role_arn", {"role_arn": ROLE_ARN, "oidc_token_file_path": "/t"}, None, None, "oidc_provider_arn"),
    (
        "oidc_role_arn",
        {"role_arn": ROLE_ARN, "oidc_provider_arn": OIDC_ARN},
        None,
        None,
        "oidc_token_file_path",
    ),
    ("credentials_uri", {}, None, None, "credentials_uri"),
    ("bearer", {}, None, None, "bearer_token"),
    ("bearer", {"bearer_token": ""}, None, None, "bearer_token"),
]


@pytest.mark.parametrize(("auth_type", "extra", "login", "password", "field"), REQUIRED_CASES)
def test_required_field_missing(
    auth_type: str, extra: dict[str, Any], login: str | None, password: str | None, field: str
) -> None:
    err = refused(field, {"auth_type": auth_type, **extra}, login=login, password=password)
    assert auth_type in str(err)
    assert "required" in str(err)


def test_every_auth_type_has_a_required_case_or_needs_nothing() -> None:
    covered = {case[0] for case in REQUIRED_CASES}
    for auth_type, required in AUTH_TYPES.items():
        assert auth_type in covered or not required, auth_type


@pytest.mark.parametrize(
    ("auth_type", "extra", "login", "password"),
    [
        ("access_key", {}, AK, SECRET),
        ("sts", {"security_token": TOKEN}, AK, SECRET),
        ("ram_role_arn", {"role_arn": ROLE_ARN}, AK, SECRET),
        ("ecs_ram_role", {"role_name": "my-ecs-role"}, None, None),
        ("ecs_ram_role", {}, None, None),
        (
            "oidc_role_arn",
            {"role_arn": ROLE_ARN, "oidc_provider_arn": OIDC_ARN, "oidc_token_file_path": "/var/run/t"},
            None,
            None,
        ),
        ("credentials_uri", {"credentials_uri": "http://127.0.0.1:9999/creds"}, None, None),
        ("credentials_uri", {"credentials_uri": "https://creds.example.com/v1/creds?x=1"}, None, None),
        ("bearer", {"bearer_token": BEARER}, None, None),
        ("default", {}, None, None),
    ],
)
def test_each_auth_type_accepted(
    auth_type: str, extra: dict[str, Any], login: str | None, password: str | None
) -> None:
    s = parse({"auth_type": auth_type, **extra}, login=login, password=password)
    assert s.auth_type == auth_type


# --------------------------------------------------------------------------- unknown / wrong extras


@pytest.mark.parametrize(
    "key", ["regionid", "Region_Id", "endpoint", "dlf-endpoint", "secret_key", "access_key_id"]
)
def test_unknown_extra_refused(key: str) -> None:
    err = refused(key, {key: "value-that-is-a-s3cr3t"})
    assert "not a known extra" in str(err)
    assert "value-that-is-a-s3cr3t" not in str(err)


def test_known_extras_are_exactly_these() -> None:
    assert "region_id" in EXTRA_FIELDS
    assert {
        "dlf_endpoint",
        "dataworks_endpoint",
        "mma_endpoint",
        "pds_endpoint",
        "sts_endpoint",
    } <= EXTRA_FIELDS
    assert "login" not in EXTRA_FIELDS
    assert "password" not in EXTRA_FIELDS


@pytest.mark.parametrize("value", [None, "", "   "])
def test_region_missing(value: str | None) -> None:
    err = refused("region_id", {"region_id": value})
    assert "required" in str(err)


@pytest.mark.parametrize(
    "value", ["Hangzhou", "cn_hangzhou", "cn", "CN-HANGZHOU", "cn-hangzhou/x", "cn-hangzhou.evil.com", "c-x"]
)
def test_region_bad(value: str) -> None:
    err = refused("region_id", {"region_id": value})
    assert "region id" in str(err)


@pytest.mark.parametrize("value", [123, ["cn-hangzhou"], {"a": 1}, True])
def test_region_not_a_string(value: Any) -> None:
    err = refused("region_id", {"region_id": value})
    assert "must be a string" in str(err)


@pytest.mark.parametrize(
    "value", ["cn-hangzhou", "ap-southeast-1", "us-east-1", "cn-hangzhou-finance", "eu-central-1"]
)
def test_region_good(value: str) -> None:
    assert parse({"region_id": value}).region_id == value


@pytest.mark.parametrize("value", ["oauth", "rsa_key_pair", "accesskey", "static"])
def test_unknown_auth_type(value: str) -> None:
    err = refused("auth_type", {"auth_type": value})
    assert "unknown auth type" in str(err)


@pytest.mark.parametrize(
    "key", ["security_token", "bearer_token", "role_arn", "pds_domain_id", "credentials_uri"]
)
def test_string_extras_must_be_strings(key: str) -> None:
    err = refused(key, {key: 12345})
    assert "must be a string" in str(err)


@pytest.mark.parametrize("login", ["key with space", "key/slash", "ключ", "a" * 129, "key\n1"])
def test_login_charset(login: str) -> None:
    err = refused("login", login=login)
    assert login.strip() not in str(err)


# ---------------------------------------------------------------------------------- role / session


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/x",
        "acs:ram::abc:role/x",
        "acs:ram::123:user/x",
        "acs:ram::123:role/",
        "acs:ram::123:role/with space",
        "acs:ram:cn-hangzhou:123:role/x",
    ],
)
def test_bad_role_arn(arn: str) -> None:
    err = refused("role_arn", {"auth_type": "ram_role_arn", "role_arn": arn})
    assert "RAM role ARN" in str(err)


@pytest.mark.parametrize(
    "arn", ["acs:ram::123:role/airflow", "acs:ram::1234567890123456:role/path/to.role-1@x"]
)
def test_good_role_arn(arn: str) -> None:
    assert parse({"auth_type": "ram_role_arn", "role_arn": arn}).role_arn == arn


@pytest.mark.parametrize("arn", ["acs:ram::123:role/x", "acs:ram::abc:oidc-provider/x", "oidc-provider/x"])
def test_bad_oidc_provider_arn(arn: str) -> None:
    refused(
        "oidc_provider_arn",
        {
            "auth_type": "oidc_role_arn",
            "role_arn": ROLE_ARN,
            "oidc_provider_arn": arn,
            "oidc_token_file_path": "/t",
        },
        login=None,
        password=None,
    )


@pytest.mark.parametrize("name", ["a", "bad name", "x" * 65, "semi;colon", "sla/sh", "ünicode"])
def test_bad_session_name(name: str) -> None:
    refused(
        "role_session_name", {"auth_type": "ram_role_arn", "role_arn": ROLE_ARN, "role_session_name": name}
    )


@pytest.mark.parametrize("name", ["ab", "x" * 64, "a.b@c-d_e"])
def test_good_session_name(name: str) -> None:
    s = parse({"auth_type": "ram_role_arn", "role_arn": ROLE_ARN, "role_session_name": name})
    assert s.role_session_name == name


@pytest.mark.parametrize("value", ["899", 43201, "abc", "", None])
def test_role_session_expiration(value: Any) -> None:
    if value in ("", None):
        assert parse({"role_session_expiration": value}).role_session_expiration == 3600
        return
    refused("role_session_expiration", {"role_session_expiration": value})


@pytest.mark.parametrize("domain", ["bad.domain", "-bj1", "bj 1", "a" * 64, "bj1/x"])
def test_bad_pds_domain(domain: str) -> None:
    refused("pds_domain_id", {"pds_domain_id": domain})


# ------------------------------------------------------------------------------------ credentials_uri


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://127.0.0.1/creds",
        "file:///etc/passwd",
        "127.0.0.1:8080/creds",
        "http://example.com/creds",
        "http://10.0.0.1/creds",
        "http://192.0.2.10/latest/meta-data",
        "https:///no-host",
    ],
)
def test_bad_credentials_uri(uri: str) -> None:
    refused(
        "credentials_uri", {"auth_type": "credentials_uri", "credentials_uri": uri}, login=None, password=None
    )


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:8080/creds", "http://localhost/c", "http://[::1]:9/c", "https://creds.example.com/c"],
)
def test_good_credentials_uri(uri: str) -> None:
    assert parse_endpoint_url("credentials_uri", uri) == uri


# --------------------------------------------------------------------------------- numbers and bools


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timeout", 0),
        ("timeout", 0.05),
        ("timeout", 301),
        ("timeout", -1),
        ("timeout", "abc"),
        ("timeout", "nan"),
        ("timeout", "inf"),
        ("timeout", True),
        ("timeout", [1]),
        ("max_retries", -1),
        ("max_retries", 11),
        ("max_retries", "many"),
        ("max_retries", "1e9"),
        ("max_retries", False),
        ("max_retries", {"n": 1}),
    ],
)
def test_numbers_out_of_range_or_not_numbers(key: str, value: Any) -> None:
    refused(key, {key: value})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("timeout", "0.1", 0.1),
        ("timeout", 300, 300.0),
        ("timeout", " 5 ", 5.0),
        ("max_retries", "0", 0),
        ("max_retries", 10, 10),
        ("max_retries", "", 3),
    ],
)
def test_numbers_in_range(key: str, value: Any, expected: float) -> None:
    assert getattr(parse({key: value}), key) == expected


@pytest.mark.parametrize(("key", "value"), [("max_retries", "2.5"), ("role_session_expiration", 1000.5)])
def test_integer_extras_refuse_fractions(key: str, value: Any) -> None:
    refused(key, {key: value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        (" yes ", True),
        ("1", True),
        (True, True),
        ("false", False),
        ("no", False),
        ("0", False),
        (False, False),
        ("", False),
        (None, False),
    ],
)
def test_use_vpc_endpoints_bool(value: Any, expected: bool) -> None:
    assert parse({"use_vpc_endpoints": value}).use_vpc_endpoints is expected


@pytest.mark.parametrize("key", ["use_vpc_endpoints", "correct_clock_skew"])
@pytest.mark.parametrize("value", ["maybe", "on", 1, 0, [True]])
def test_bool_extras_refuse_other_values(key: str, value: Any) -> None:
    err = refused(key, {key: value})
    assert "true or false" in str(err)


def test_correct_clock_skew_string() -> None:
    assert parse({"correct_clock_skew": "true"}).correct_clock_skew is True


# ------------------------------------------------------------------------------------------ endpoints


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "ftp://x",
        "https://",
        "http://example.com",
        "http://10.1.2.3:80",
        "http://[fe80::1]",
        "http://127.0.0.1.nip.io",
        "http://localhost.example.com",
        "https://h/path",
        "https://h/api/",
        "https://user:pw@h",
        "https://user@h",
        "https://h?x=1",
        "https://h#frag",
        "bad host!",
        "bad_host!",
        "h\tx",
        "h\x00x",
        "https://h:99999",
        "https://h:port",
        "https://-bad-.example.com",
        "https://" + "a" * 64 + ".com",
        "https://" + ".".join(["abc"] * 70),
        "wss://h",
    ],
)
def test_endpoint_garbage(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_endpoint("dlf_endpoint", value)
    assert info.value.field == "dlf_endpoint"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8080", Endpoint("http", "127.0.0.1", 8080)),
        ("http://localhost", Endpoint("http", "localhost")),
        ("http://LOCALHOST:80", Endpoint("http", "localhost", 80)),
        ("http://[::1]:1", Endpoint("http", "::1", 1)),
        ("http://127.8.9.10", Endpoint("http", "127.8.9.10")),
        ("dlf-vpc.cn-hangzhou.aliyuncs.com", Endpoint("https", "dlf-vpc.cn-hangzhou.aliyuncs.com")),
        ("  dlf.cn-hangzhou.aliyuncs.com  ", Endpoint("https", "dlf.cn-hangzhou.aliyuncs.com")),
        ("127.0.0.1:8080", Endpoint("https", "127.0.0.1", 8080)),
        ("HTTPS://Example.COM/", Endpoint("https", "example.com")),
        ("https://bj1.api.aliyunpds.com:443", Endpoint("https", "bj1.api.aliyunpds.com", 443)),
    ],
)
def test_endpoint_accepted(value: str, expected: Endpoint) -> None:
    assert parse_endpoint("x_endpoint", value) == expected


def test_bare_host_is_https() -> None:
    ep = parse_endpoint("dlf_endpoint", "dlf.cn-hangzhou.aliyuncs.com")
    assert ep.scheme == "https"
    assert ep.url == "https://dlf.cn-hangzhou.aliyuncs.com"


def test_endpoint_netloc_and_url() -> None:
    assert Endpoint("http", "::1", 1).netloc == "[::1]:1"
    assert Endpoint("http", "::1", 1).url == "http://[::1]:1"
    assert Endpoint("https", "h.example.com").netloc == "h.example.com"
    assert Endpoint("http", "127.0.0.1", 8080).url == "http://127.0.0.1:8080"


def test_plain_http_refusal_names_https() -> None:
    with pytest.raises(ConfigurationError, match="loopback") as info:
        parse_endpoint("sts_endpoint", "http://sts.cn-hangzhou.aliyuncs.com")
    assert info.value.field == "sts_endpoint"


def test_connection_endpoint_error_names_the_extra() -> None:
    err = refused("pds_endpoint", {"pds_endpoint": "http://example.com"})
    assert "http://" in str(err)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("field", "extra"),
    [
        ("dlf_endpoint", {"dlf_endpoint": "https://user:Sup3rS3cretPw@"}),
        ("dlf_endpoint", {"dlf_endpoint": "https://user:Sup3rS3cretPw@bad_host"}),
        (
            "credentials_uri",
            {
                "auth_type": "credentials_uri",
                "credentials_uri": "ftp://user:Sup3rS3cretPw@creds.example.com/x",
            },
        ),
    ],
)
def test_endpoint_error_never_echoes_embedded_password(field: str, extra: dict[str, Any]) -> None:
    err = refused(field, extra, login=AK, password=SECRET)
    assert "Sup3rS3cretPw" not in str(err)


# ------------------------------------------------------------------------------------- secrets in repr


def test_settings_repr_hides_secrets() -> None:
    s = parse(
        {"auth_type": "sts", "security_token": TOKEN, "bearer_token": BEARER, "role_arn": ROLE_ARN},
        login=AK,
        password=SECRET,
    )
    for text in (repr(s), str(s)):
        assert SECRET not in text
        assert TOKEN not in text
        assert BEARER not in text
        assert AK in text  # the key id is not a secret and helps debugging
        assert "cn-hangzhou" in text


def test_settings_repr_hides_bearer() -> None:
    s = parse({"auth_type": "bearer", "bearer_token": BEARER}, login=None, password=None)
    assert BEARER not in repr(s)
    assert s.bearer_token == BEARER


def test_settings_is_frozen_and_fingerprint_tracks_secrets() -> None:
    a = parse()
    b = parse()
    c = parse(password=SECRET + "x")
    assert a == b
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    with pytest.raises(AttributeError):
        a.region_id = "cn-beijing"  # type: ignore[misc]
    assert isinstance(a, ConnectionSettings)


def test_fingerprint_tracks_the_sts_host() -> None:
    """The cached client's credential source calls STS at the host ``use_vpc_endpoints`` picks:
    a connection switched to VPC endpoints must not keep a client that calls the public one."""
    extra = {"auth_type": "ram_role_arn", "role_arn": ROLE_ARN}
    assert parse(extra).fingerprint() != parse({**extra, "use_vpc_endpoints": True}).fingerprint()


@pytest.mark.parametrize(
    ("extra", "login", "password"),
    [
        ({"auth_type": "sts", "security_token": 12345}, AK, SECRET),
        ({"auth_type": "nope"}, AK, SECRET),
        ({"region_id": "Hangzhou"}, AK, SECRET),
        ({"timeout": "x"}, AK, SECRET),
        ({"dlf_endpoint": "http://example.com"}, AK, SECRET),
        ({"auth_type": "sts", "security_token": None}, AK, SECRET),
        ({"auth_type": "ram_role_arn", "role_arn": "bad"}, AK, SECRET),
        ({"bogus": TOKEN}, AK, SECRET),
    ],
)
def test_errors_never_contain_secrets(extra: dict[str, Any], login: str, password: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse({"security_token": TOKEN, "bearer_token": BEARER, **extra}, login=login, password=password)
    for text in (str(info.value), repr(info.value)):
        assert SECRET not in text
        assert TOKEN not in text
        assert BEARER not in text


# ------------------------------------------------------------------------------ the table of extras

BY_NAME = {extra.name: extra for extra in EXTRAS}


def test_every_extra_is_described_once() -> None:
    names = [extra.name for extra in EXTRAS]
    assert len(names) == len(set(names))
    assert set(names) == EXTRA_FIELDS
    assert set(ENDPOINT_EXTRAS) <= EXTRA_FIELDS
    for extra in EXTRAS:
        assert extra.label, extra.name
        assert extra.description, extra.name
        if extra.kind in ("integer", "number"):
            assert extra.bounds, extra.name  # every number has a minimum and a maximum


def test_the_auth_types_of_the_table_are_the_auth_types() -> None:
    assert BY_NAME["auth_type"].choices == tuple(AUTH_TYPES)
    for auth_type in AUTH_TYPES:
        assert auth_type in BY_NAME["auth_type"].help
    for auth_type, required in AUTH_TYPES.items():
        for name in set(required) - {"login", "password"}:
            assert auth_type in BY_NAME[name].auth_types, (auth_type, name)
    for extra in EXTRAS:
        assert set(extra.auth_types) <= set(AUTH_TYPES), extra.name


def test_secret_extras_stay_out_of_reprs() -> None:
    secret = {name for name, extra in BY_NAME.items() if extra.secret}
    assert secret == {"security_token", "bearer_token", "https_proxy", "http_proxy"}
    s = parse(
        {
            "auth_type": "sts",
            "security_token": TOKEN,
            "bearer_token": BEARER,
            "https_proxy": "http://user:Pr0xyPassw0rd@proxy.example:3128",
            "http_proxy": "http://user:Pr0xyPassw0rd@proxy.example:3128",
        }
    )
    for text in (repr(s), repr(s.network)):
        for value in (TOKEN, BEARER, "Pr0xyPassw0rd", "proxy.example"):
            assert value not in text


def test_the_region_pattern_is_the_console_links_one() -> None:
    from airflow_aliyun_tasks import links

    assert links.REGION_RE is REGION_RE
    assert not hasattr(links, "_REGION_RE")


def _changed_values() -> dict[str, Any]:
    """For every extra, a valid value that differs from the base connection's (see below)."""
    import certifi

    values: dict[str, Any] = {
        "region_id": "cn-beijing",
        "auth_type": "sts",
        "security_token": TOKEN + "-2",
        "role_arn": "acs:ram::1234567890123456:role/other",
        "role_session_name": "other-session",
        "external_id": "ext-2",
        "policy": '{"Version": "1"}',
        "role_session_expiration": 900,
        "role_name": "ecs-role",
        "oidc_provider_arn": OIDC_ARN,
        "oidc_token_file_path": "/var/run/token",
        "credentials_uri": "http://127.0.0.1:1/creds",
        "bearer_token": BEARER,
        "use_vpc_endpoints": True,
        "timeout": 5,
        "connect_timeout": 2,
        "https_proxy": "http://127.0.0.1:3128",
        "http_proxy": "http://127.0.0.1:3129",
        "no_proxy": ".example.com",
        "trust_env": False,
        "ca_bundle": certifi.where(),
        "user_agent": "etl/1.0",
        "max_retries": 0,
        "correct_clock_skew": True,
    }
    for name in ENDPOINT_EXTRAS:
        values[name] = "http://127.0.0.1:1"
    values["endpoints"] = {"dlf": "http://127.0.0.1:2"}
    for name in EXTRA_FIELDS - set(values):  # the registry's id defaults
        values[name] = BY_NAME[name].example or "x1"
    return values


@pytest.mark.parametrize("name", sorted(EXTRA_FIELDS))
def test_fingerprint_counts_exactly_the_extras_the_client_depends_on(name: str) -> None:
    """Each extra changes the client cache's key exactly when its table entry says so; the
    service endpoints and id defaults do not (the hook applies them per call)."""
    base_extra = {"auth_type": "ram_role_arn", "role_arn": ROLE_ARN, "security_token": TOKEN}
    base = parse(base_extra)
    changed = parse({**base_extra, name: _changed_values()[name]})
    assert changed != base  # the value took effect
    assert (changed.fingerprint() != base.fingerprint()) is BY_NAME[name].fingerprint


def test_only_per_call_extras_stay_out_of_the_fingerprint() -> None:
    from airflow_aliyun_tasks.services import connection_defaults

    per_call = (set(ENDPOINT_EXTRAS) - {"sts_endpoint"}) | set(connection_defaults()) | {"endpoints"}
    assert {name for name, extra in BY_NAME.items() if not extra.fingerprint} == per_call
