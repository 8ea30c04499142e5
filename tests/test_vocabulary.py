"""The spec vocabulary that the services after the first five need, proven on synthetic specs:
body encodings (JSON, form, raw), ids in headers, integer and list ids, cancel operations with
their own placement, constant body and per-task check, start operations with headers, raw
bodies, idempotency keys in headers and empty answers, two-phase starts, list paths in answers.

The hook's side (``call_api`` with ``headers``, ``body_encoding`` and ``response_body``) is shown
against the emulator (which verifies the signature over the bytes sent) and against a scripted
server that records the request byte for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest

from airflow_aliyun_tasks._call import Call
from airflow_aliyun_tasks.config import parse_connection
from airflow_aliyun_tasks.credentials import Credentials
from airflow_aliyun_tasks.errors import ApiError, BadResponseError, ConfigurationError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.services import (
    DATAWORKS,
    EMR_SERVERLESS_SPARK,
    FORM_CONTENT_TYPE,
    RAW_CONTENT_TYPE,
    SERVICES,
    ApiRequest,
    CancelOperation,
    FollowUp,
    IdParam,
    ServiceSpec,
    StartOperation,
    decode_form,
    encode_body,
    form_value,
    is_list_path,
    lookup,
    request_values,
    tasks_from_response,
)
from airflow_aliyun_tasks.signing import JSON_CONTENT_TYPE
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator
from airflow_aliyun_tasks.testing._auth import SignedRequest, Verifier
from test_transport import Scripted, response

pytestmark = pytest.mark.usefixtures("fresh_clients", "close_shared_sync_client")


def synthetic(**fields: Any) -> ServiceSpec:
    """A spec shaped as its fields say (the rest: DataWorks's, JSON bodies unless said)."""
    fields.setdefault("body_encoding", "json")
    return dataclasses.replace(DATAWORKS, name="synthetic", label="Synthetic", **fields)


# --------------------------------------------------------------------------- body encodings


def test_json_body_is_compact_utf8() -> None:
    assert encode_body({"a": "é", "b": [1, True]}, "json") == (
        '{"a":"é","b":[1,true]}'.encode(),
        JSON_CONTENT_TYPE,
    )
    assert encode_body(None, "json") == (b"", None)
    assert encode_body({}, "json") == (b"{}", JSON_CONTENT_TYPE)


def test_form_body_as_tea_openapi_sends_form_data() -> None:
    body = {
        "Name": "my app",
        "ProjectId": 100,
        "Tasks": [{"Name": "t 1", "Script": {"Content": "select *"}}],
        "Ids": [1234, 5678],
        "AutoStartEnabled": True,
        "Comment": None,
        "Ratio": 1.5,
        "Amp": "a&b=c+d",
    }
    data, content_type = encode_body(body, "form")
    assert content_type == FORM_CONTENT_TYPE
    text = data.decode()
    # keys sorted; a space is "+"; lists and objects are compact JSON text; booleans lower case;
    # None left out
    assert [p.split("=")[0] for p in text.split("&")] == [
        "Amp",
        "AutoStartEnabled",
        "Ids",
        "Name",
        "ProjectId",
        "Ratio",
        "Tasks",
    ]
    assert "Name=my+app" in text
    assert "AutoStartEnabled=true" in text
    assert "Ids=%5B1234%2C5678%5D" in text
    assert dict(parse_qsl(text)) == {
        "Amp": "a&b=c+d",
        "AutoStartEnabled": "true",
        "Ids": "[1234,5678]",
        "Name": "my app",
        "ProjectId": "100",
        "Ratio": "1.5",
        "Tasks": '[{"Name":"t 1","Script":{"Content":"select *"}}]',
    }
    assert decode_form(data) == dict(parse_qsl(text))
    assert encode_body({}, "form") == (b"", None)
    assert encode_body({"a": None}, "form") == (b"", None)
    assert encode_body("A=1&B=2", "form") == (b"A=1&B=2", FORM_CONTENT_TYPE)
    with pytest.raises(ConfigurationError):
        encode_body(["not", "a", "mapping"], "form")
    with pytest.raises(ConfigurationError):
        form_value(object())


def test_raw_body_is_sent_as_given() -> None:
    assert encode_body(b"\x00\xff", "raw") == (b"\x00\xff", RAW_CONTENT_TYPE)
    assert encode_body("héllo", "raw") == ("héllo".encode(), RAW_CONTENT_TYPE)
    assert encode_body({"k": [1]}, "raw") == (b'{"k":[1]}', RAW_CONTENT_TYPE)
    with pytest.raises(ConfigurationError):
        encode_body({}, "xml")  # type: ignore[arg-type]


def test_form_status_call_puts_body_ids_in_a_form() -> None:
    """AnalyticDB's GetSparkAppState: ``AppId`` in a form body, ``DBClusterId`` in the query."""
    spec = synthetic(
        action="GetSparkAppState",
        method="POST",
        body_encoding="form",
        ids=(
            IdParam("app_id", "AppId", "body"),
            IdParam("cluster_id", "DBClusterId", "query", required=False),
        ),
    )
    req = spec.build_request({"app_id": "s202411071444hzdvk486d9d200", "cluster_id": "amv-1"})
    assert req == ApiRequest(
        method="POST",
        path="/",
        query={"DBClusterId": "amv-1"},
        body=b"AppId=s202411071444hzdvk486d9d200",
        content_type=FORM_CONTENT_TYPE,
    )
    # without body ids a form POST has no body (a JSON POST sends "{}", as it always has)
    empty = synthetic(method="POST", body_encoding="form", ids=(IdParam("job_id", "JobId", "query"),))
    assert empty.build_request({"job_id": "j"}).body == b""
    assert synthetic(method="POST", ids=(IdParam("job_id", "JobId", "query"),)).build_request(
        {"job_id": "j"}
    ).body == (b"{}")


# --------------------------------------------------------------------------- ids in headers, ints, lists


def test_ids_in_headers() -> None:
    """Flink's ``workspace`` header beside the path's namespace and job id."""
    spec = synthetic(
        style="ROA",
        method="GET",
        path="/api/v2/namespaces/{namespace}/jobs/{jobId}",
        ids=(
            IdParam("workspace_id", "workspace", "header"),
            IdParam("namespace", "namespace", "path"),
            IdParam("job_id", "jobId", "path"),
        ),
    )
    req = spec.build_request({"workspace_id": "a14bd5d90a", "namespace": "default-namespace", "job_id": "j1"})
    assert req.headers == {"workspace": "a14bd5d90a"}
    assert req.path == "/api/v2/namespaces/default-namespace/jobs/j1"
    assert (req.query, req.body) == ({}, b"")
    for bad in ("x-acs-workspace", "Host", "content-type", "bad header", ""):
        with pytest.raises(ConfigurationError):
            IdParam("workspace_id", bad, "header")


def test_integer_and_list_ids() -> None:
    ids = (IdParam("instance_id", "Ids", "body", integer=True, as_list=True),)
    assert synthetic(method="POST", ids=ids).build_request({"instance_id": "1234"}).body == b'{"Ids":[1234]}'
    form = synthetic(method="POST", body_encoding="form", ids=ids).build_request({"instance_id": 1234})
    assert form.body == b"Ids=%5B1234%5D"
    query = synthetic(ids=(IdParam("instance_id", "Ids", "query", integer=True, as_list=True),))
    assert query.build_request({"instance_id": "1234"}).query == {"Ids": "[1234]"}
    text_list = synthetic(method="POST", ids=(IdParam("job_id", "JobIds", "body", as_list=True),))
    assert text_list.build_request({"job_id": "j-1"}).body == b'{"JobIds":["j-1"]}'
    number = synthetic(method="POST", ids=(IdParam("job_id", "Id", "body", integer=True),))
    assert number.build_request({"job_id": "007"}).body == b'{"Id":7}'


# --------------------------------------------------------------------------- cancel operations


def _succeeded_item(body: Any, ids: Any) -> str | None:
    item = lookup(body, f"SuccessInfo.{ids['instance_id']}")
    if not isinstance(item, dict) or item.get("Success") is True:
        return None
    return str(item.get("Message") or "the cancel failed")


def test_cancel_with_its_own_params_and_a_per_task_check() -> None:
    """DataWorks: the status call sends query ``Id``; the cancel a form field ``Ids=[<id>]``."""
    spec = synthetic(
        body_encoding="form",
        ids=(IdParam("instance_id", "Id", "query", integer=True),),
        cancel=CancelOperation(
            action="StopWorkflowInstances",
            method="POST",
            path="/",
            params=(IdParam("instance_id", "Ids", "body", integer=True, as_list=True),),
            check=_succeeded_item,
        ),
    )
    assert spec.build_request({"instance_id": "1234"}).query == {"Id": "1234"}
    req = spec.build_cancel_request({"instance_id": "1234"})
    assert req == ApiRequest(
        method="POST", path="/", query={}, body=b"Ids=%5B1234%5D", content_type=FORM_CONTENT_TYPE
    )
    ok = {"SuccessInfo": {"1234": {"Success": True, "Message": ""}}}
    refused = {"SuccessInfo": {"1234": {"Success": False, "Message": "The instance does not exist."}}}
    assert spec.check_cancel(ok, {"instance_id": "1234"}) is None
    assert spec.check_cancel(refused, {"instance_id": "1234"}) == "The instance does not exist."
    assert EMR_SERVERLESS_SPARK.check_cancel(refused, {}) is None  # no check: any 2xx answer is a cancel


def test_cancel_with_a_constant_body_and_header_ids() -> None:
    """Flink's StopJob: POST ``.../jobs/{jobId}:stop``, ``{"stopStrategy": "NONE"}``, the
    ``workspace`` header, as the status call places the ids."""
    spec = synthetic(
        style="ROA",
        path="/api/v2/namespaces/{namespace}/jobs/{jobId}",
        ids=(
            IdParam("workspace_id", "workspace", "header"),
            IdParam("namespace", "namespace", "path"),
            IdParam("job_id", "jobId", "path"),
        ),
        cancel=CancelOperation(
            action="StopJob",
            method="POST",
            path="/api/v2/namespaces/{namespace}/jobs/{jobId}:stop",
            body={"stopStrategy": "NONE"},
            body_encoding="json",
        ),
    )
    req = spec.build_cancel_request({"workspace_id": "ws", "namespace": "ns", "job_id": "j1"})
    assert req == ApiRequest(
        method="POST",
        path="/api/v2/namespaces/ns/jobs/j1:stop",
        query={},
        body=b'{"stopStrategy":"NONE"}',
        content_type=JSON_CONTENT_TYPE,
        headers={"workspace": "ws"},
    )


def test_cancel_without_a_body() -> None:
    """PAI DLC's StopJob and FC's StopAsyncTask send no body; FC's keeps the optional query."""
    spec = synthetic(
        style="ROA",
        path="/2023-03-30/functions/{functionName}/async-tasks/{taskId}",
        ids=(
            IdParam("function_name", "functionName", "path"),
            IdParam("task_id", "taskId", "path"),
            IdParam("qualifier", "qualifier", "query", required=False),
        ),
        cancel=CancelOperation(
            action="StopAsyncTask",
            method="PUT",
            path="/2023-03-30/functions/{functionName}/async-tasks/{taskId}/stop",
        ),
    )
    req = spec.build_cancel_request({"function_name": "f", "task_id": "t", "qualifier": "LATEST"})
    assert (req.method, req.path, req.query, req.body, req.content_type) == (
        "PUT",
        "/2023-03-30/functions/f/async-tasks/t/stop",
        {"qualifier": "LATEST"},
        b"",
        None,
    )


# --------------------------------------------------------------------------- start operations


def test_start_operation_headers_and_idempotency_rules() -> None:
    op = StartOperation(
        action="InvokeFunction",
        method="POST",
        path="/2023-03-30/functions/{functionName}/invocations",
        task_ids={"function_name": "request:functionName", "task_id": "request:x-fc-async-task-id"},
        idempotency_param="x-fc-async-task-id",
        idempotency_location="header",
        idempotency_format="airflow-{token}",
        headers={"x-fc-invocation-type": "Async"},
        body_encoding="raw",
        response_body="none",
    )
    values = op.request_values(
        "/2023-03-30/functions/my-func/invocations",
        {"qualifier": "LATEST"},
        b"\x00opaque",
        {"X-FC-Async-Task-Id": "airflow-1", "x-fc-invocation-type": "Async"},
    )
    assert values["functionName"] == "my-func"
    assert values["x-fc-async-task-id"] == "airflow-1"
    assert values["qualifier"] == "LATEST"
    found, missing = tasks_from_response(op.task_ids, {}, values)
    assert (found, missing) == ([{"function_name": "my-func", "task_id": "airflow-1"}], [])
    with pytest.raises(ConfigurationError):
        dataclasses.replace(op, headers={"x-acs-action": "x"})
    with pytest.raises(ConfigurationError):
        dataclasses.replace(op, headers={"x-fc-log-type": "Tail\r\nInjected: 1"})
    with pytest.raises(ConfigurationError):
        dataclasses.replace(op, idempotency_format="airflow")


def test_request_values_read_form_bodies() -> None:
    """AnalyticDB's SubmitSparkApp has every field in its form body (``DBClusterId`` too)."""
    form = b"AppName=my+app&DBClusterId=amv-1&Data=%7B%7D"
    assert request_values("/", "/", None, form)["DBClusterId"] == "amv-1"
    assert request_values("/", "/", None, form.decode())["AppName"] == "my app"
    assert request_values("/", "/", None, {"DBClusterId": "amv-2", "Flag": True}) == {"DBClusterId": "amv-2"}
    # the path wins over the query, the query over the body, the body over the headers
    values = request_values(
        "/x/{id}", "/x/p", {"id": "q", "k": "q"}, {"id": "b", "k": "b", "h": "b"}, {"H": "h"}
    )
    assert (values["id"], values["k"], values["h"]) == ("p", "q", "b")


# --------------------------------------------------------------------------- answers: lists, two phases


def test_lookup_walks_lists() -> None:
    body = {"Result": {"WorkflowInstanceIds": [11, 12], "Items": [{"Id": "a"}, {"Id": "b"}, {"No": 1}]}}
    assert lookup(body, "Result.WorkflowInstanceIds.0") == 11
    assert lookup(body, "Result.WorkflowInstanceIds[1]") == 12
    assert lookup(body, "Result.WorkflowInstanceIds.2") is None
    assert lookup(body, "Result.WorkflowInstanceIds.x") is None
    assert lookup(body, "Result.WorkflowInstanceIds.*") == [11, 12]
    assert lookup(body, "Result.Items[*].Id") == ["a", "b"]
    assert lookup(body, "Result.Missing.*") is None
    assert lookup({"a": "text"}, "a.0") is None
    assert lookup(body, "AsyncJob.Id") is None
    assert is_list_path("Result.Ids.*")
    assert is_list_path("Result.Ids[*]")
    assert not is_list_path("Result.Ids.0")


def test_tasks_from_a_list_answer() -> None:
    body = {"Result": {"WorkflowInstanceIds": [11, 12], "Names": ["a", "b"], "One": [7]}}
    task_ids = {"instance_id": "Result.WorkflowInstanceIds.*"}
    assert tasks_from_response(task_ids, body, {}) == ([{"instance_id": "11"}, {"instance_id": "12"}], [])
    paired = {
        "instance_id": "Result.WorkflowInstanceIds.*",
        "name": "Result.Names[*]",
        "project": "request:P",
    }
    assert tasks_from_response(paired, body, {"P": "9"})[0] == [
        {"project": "9", "instance_id": "11", "name": "a"},
        {"project": "9", "instance_id": "12", "name": "b"},
    ]
    assert tasks_from_response({"a": "Result.One.*", "b": "Result.Names.*"}, body, {}) == ([], ["a", "b"])
    assert tasks_from_response({"a": "Result.Empty.*"}, {"Result": {"Empty": []}}, {}) == ([], ["a"])
    assert tasks_from_response({"a": "Result.Bad.*"}, {"Result": {"Bad": [True]}}, {}) == ([], ["a"])
    assert tasks_from_response({"a": "Id"}, {"Id": "x"}, {}) == ([{"a": "x"}], [])
    assert tasks_from_response({"a": "Id"}, {}, {}) == ([], ["a"])


FOLLOW_UP = FollowUp(
    action="GetCreateWorkflowInstancesResult",
    method="GET",
    path="/",
    params={"OperationId": "OperationId"},
    status="Result.Status",
    pending=("Creating",),
    done=("Created",),
    failed=("CreateFailure",),
    message="Result.FailureMessage",
    task_ids={"instance_id": "Result.WorkflowInstanceIds.*"},
)


def test_follow_up_request_and_outcomes() -> None:
    values, missing = FOLLOW_UP.values({"OperationId": "e15ad21c-1", "RequestId": "r"})
    assert (values, missing) == ({"OperationId": "e15ad21c-1"}, [])
    assert FOLLOW_UP.values({"RequestId": "r"}) == ({}, ["OperationId"])
    req = FOLLOW_UP.build_request(values, "form")
    assert req == ApiRequest(
        method="GET", path="/", query={"OperationId": "e15ad21c-1"}, body=b"", content_type=None
    )
    with pytest.raises(ConfigurationError):
        FOLLOW_UP.build_request({"OperationId": "../x"}, "form")
    assert FOLLOW_UP.outcome({"Result": {"Status": "Creating"}}) == ("pending", "Creating")
    assert FOLLOW_UP.outcome({"Result": {"Status": "Created"}}) == ("done", "Created")
    assert FOLLOW_UP.outcome({"Result": {"Status": "CreateFailure"}}) == ("failed", "CreateFailure")
    assert FOLLOW_UP.outcome({"Result": {"Status": "Paused"}}) == ("pending", "Paused")
    assert FOLLOW_UP.outcome({}) == ("pending", None)
    start = StartOperation(
        action="CreateWorkflowInstances", method="POST", path="/", task_ids={}, follow_up=FOLLOW_UP
    )
    assert start.several()
    assert not StartOperation(action="A", method="POST", path="/", task_ids={"a": "Id"}).several()


# --------------------------------------------------------------------------- the hook's side


def _settings(emulator_url: str) -> Any:
    extra = {"region_id": "cn-hangzhou", "dataworks_endpoint": emulator_url, "sts_endpoint": emulator_url}
    return parse_connection(login=DEFAULT_ACCESS_KEY_ID, password=DEFAULT_ACCESS_KEY_SECRET, extra=extra)


def _signed_request(raw: bytes) -> SignedRequest:
    """A request a scripted server recorded, as the emulator's verifier reads one."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ")
    path, _, query = target.partition("?")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return SignedRequest(method, path, parse_qsl(query, keep_blank_values=True), headers, body)


def _verify(raw: bytes) -> None:
    """The emulator's own ACS3 verification (a canonicalization of its own) of a recorded request."""
    req = _signed_request(raw)
    keys = {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}
    from airflow_aliyun_tasks.testing._auth import KeyRecord

    verifier = Verifier(
        lambda ak: KeyRecord(ak, keys[ak]) if ak in keys else None,
        lambda ak, nonce: True,
        now=__import__("time").time(),
        max_skew=900,
    )
    verifier.acs3(req)


def test_call_api_sends_a_form_signed_over_its_bytes(emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    emulator.add_dataworks_job("job-form", ["Running", "Success"])
    hook = AlibabaCloudTasksHook()
    # DataWorks reads a form body's fields as its parameters: the job is found, the signature
    # over the form bytes accepted.
    body = hook.call_api(
        "GetJobStatus", "2024-05-18", service="dataworks", body={"JobId": "job-form"}, body_encoding="form"
    )
    assert body["JobStatus"]["JobId"] == "job-form"
    with Scripted([response(b'{"RequestId":"r"}')]) as server:
        hook._settings = _settings(server.url)
        hook._client = None
        hook.call_api(
            "StopWorkflowInstances",
            "2024-05-18",
            service="dataworks",
            body={"Ids": [1234], "Comment": "stop it"},
            body_encoding="form",
        )
    (raw,) = server.requests
    head, _, sent = raw.partition(b"\r\n\r\n")
    assert sent == b"Comment=stop+it&Ids=%5B1234%5D"
    assert b"content-type: application/x-www-form-urlencoded" in head.lower()
    assert hashlib.sha256(sent).hexdigest().encode() in head
    _verify(raw)


def test_call_api_sends_headers_unsigned_and_raw_bodies(emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    hook = AlibabaCloudTasksHook()
    # The gateway accepts headers outside the signature (it requires host and x-acs-* signed).
    emulator.add_dataworks_job("job-h", ["Running"])
    answer = hook.call_api(
        "GetJobStatus",
        "2024-05-18",
        service="dataworks",
        method="GET",
        query={"JobId": "job-h"},
        headers={"workspace": "ws-1", "X-Fc-Invocation-Type": "Async", "none": None},
    )
    assert answer["JobStatus"]["Status"] == "Running"
    with Scripted([response(b"", status="202 Accepted"), response(b"", status="202 Accepted")]) as server:
        hook._settings = _settings(server.url)
        hook._client = None
        empty = hook.call_api(
            "InvokeFunction",
            "2023-03-30",
            endpoint=server.url,
            path="/2023-03-30/functions/f/invocations",
            headers={"x-fc-invocation-type": "Async", "x-fc-async-task-id": "airflow-1"},
            body=b"\x00payload",
            body_encoding="raw",
            response_body="none",
        )
        assert empty == {}
        with pytest.raises(BadResponseError, match="is empty"):
            hook.call_api("InvokeFunction", "2023-03-30", endpoint=server.url, body=b"x", body_encoding="raw")
    raw = server.requests[0]
    head, _, sent = raw.partition(b"\r\n\r\n")
    assert sent == b"\x00payload"
    lower = head.decode("latin-1").lower()
    assert "content-type: application/octet-stream" in lower
    assert "x-fc-invocation-type: async" in lower
    assert "x-fc-async-task-id: airflow-1" in lower
    signed = lower.split("signedheaders=", 1)[1].split(",", 1)[0]
    assert "x-fc" not in signed
    assert "content-type" in signed
    _verify(raw)
    for bad in ({"x-acs-action": "Other"}, {"Host": "evil"}, {"a b": "x"}, {"x-ok": "line\nbreak"}):
        with pytest.raises(ConfigurationError):
            hook.call_api("GetCallerIdentity", "2015-04-01", service="sts", headers=bad)
    with pytest.raises(ConfigurationError):
        hook.call_api("GetCallerIdentity", "2015-04-01", service="sts", response_body="xml")  # type: ignore[arg-type]


def test_header_ids_reach_the_wire_and_stay_unsigned() -> None:
    from airflow_aliyun_tasks.config import Endpoint

    call = Call(
        endpoint=Endpoint("https", "ververica.cn-hangzhou.aliyuncs.com"),
        action="GetJob",
        version="2022-07-18",
        method="GET",
        path="/api/v2/namespaces/ns/jobs/j",
        headers={"workspace": "ws-1"},
    )
    headers = call._plan.headers(call, Credentials("ak", "sk"), 1_767_225_600.0, "nonce", "ua")
    assert headers["workspace"] == "ws-1"
    assert "workspace" not in headers["authorization"]


def test_cancel_answer_judged_per_task(
    emulator: Emulator, make_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2xx answer whose per-task result says no is a failed cancel, with the service's reason."""
    make_conn()
    spec = SERVICES["emr_serverless_spark"]
    assert spec.cancel is not None
    checked = dataclasses.replace(
        spec, cancel=dataclasses.replace(spec.cancel, check=lambda body, ids: f"refused {ids['job_run_id']}")
    )
    monkeypatch.setitem(SERVICES, "emr_serverless_spark", checked)
    emulator.add_emr_serverless_spark_job_run("w-1", "jr-1", ["Running"])
    hook = AlibabaCloudTasksHook()
    with pytest.raises(ApiError, match="EMR Serverless Spark CancelJobRun: refused jr-1") as info:
        hook.cancel_task("emr_serverless_spark", workspace_id="w-1", job_run_id="jr-1")
    assert info.value.http_status == 200
    assert info.value.request_id
    monkeypatch.setitem(SERVICES, "emr_serverless_spark", spec)
    assert (
        hook.cancel_task("emr_serverless_spark", workspace_id="w-1", job_run_id="jr-1")["jobRunId"] == "jr-1"
    )


async def test_cancel_answer_judged_per_task_async(
    emulator: Emulator, make_conn: Any, monkeypatch: pytest.MonkeyPatch, aclose_pool: None
) -> None:
    make_conn()
    spec = SERVICES["emr_serverless_spark"]
    assert spec.cancel is not None
    checked = dataclasses.replace(spec, cancel=dataclasses.replace(spec.cancel, check=lambda body, ids: "no"))
    monkeypatch.setitem(SERVICES, "emr_serverless_spark", checked)
    emulator.add_emr_serverless_spark_job_run("w-1", "jr-2", ["Running"])
    with pytest.raises(ApiError, match="no"):
        await AlibabaCloudTasksHook().acancel_task(
            "emr_serverless_spark", workspace_id="w-1", job_run_id="jr-2"
        )


def test_unknown_form_body_value_is_refused_before_sending(make_conn: Any) -> None:
    make_conn()
    with pytest.raises(ConfigurationError):
        AlibabaCloudTasksHook().call_api(
            "X", "2024-05-18", service="dataworks", body={"a": object()}, body_encoding="form"
        )
    assert json.loads(encode_body({"a": 1}, "json")[0]) == {"a": 1}


# --------------------------------------------------------------------------- the emulator's core


def test_emulator_core_serves_what_service_modules_script(
    emulator: Emulator, make_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty 202, an error inside an HTTP 200 envelope, and the request's headers and JSON
    array parameters as a handler reads them."""
    from airflow_aliyun_tasks.errors import NotFoundError
    from airflow_aliyun_tasks.testing import _core
    from airflow_aliyun_tasks.testing._base import Reply, envelope_error, header_key, list_param_keys

    make_conn()
    hook = AlibabaCloudTasksHook()
    seen: list[Any] = []
    replies: list[Reply] = []

    def answer(self: Any, call: Any, service: Any) -> Reply:
        seen.append(
            (
                call.header("X-Fc-Async-Task-Id"),
                call.json_list("Ids"),
                call.json_list("Name"),
                header_key("fc", "x-fc-async-task-id")(call),
                list_param_keys("dataworks", "Ids")(call),
            )
        )
        return replies.pop(0)

    monkeypatch.setattr(_core.Emulator, "_answer", answer)
    replies.append(Reply.empty(202))
    empty = hook.call_api(
        "GetJobStatus",
        "2024-05-18",
        service="dataworks",
        headers={"x-fc-async-task-id": "airflow-1"},
        body={"Ids": [1, 2], "Name": "n"},
        response_body="none",
    )
    assert empty == {}
    assert seen[-1] == (
        "airflow-1",
        [1, 2],
        None,
        ("fc", "airflow-1"),
        (("dataworks", "1"), ("dataworks", "2")),
    )
    replies.append(envelope_error("Job.NotFound", "no such job", "R-9"))
    with pytest.raises(NotFoundError) as info:
        hook.call_api("GetJobStatus", "2024-05-18", service="dataworks")
    assert (info.value.code, info.value.message, info.value.request_id) == (
        "Job.NotFound",
        "no such job",
        "R-9",
    )
    assert info.value.http_status == 200
