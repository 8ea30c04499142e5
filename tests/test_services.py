"""Service specs and response parsers.

The parsers are checked on the documentation's own response samples (copied verbatim from the
research brief, section A), on every documented quirk, on every entry of the state tables, and
by a property-based fuzz over arbitrary JSON values. The fuzz runs ``ALIYUN_FUZZ_EXAMPLES``
examples per parser (default 300); for a long run::

    ALIYUN_FUZZ_EXAMPLES=100000 pytest tests/test_services.py -k fuzz
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aliyun_tasks import services
from airflow_aliyun_tasks.errors import BadResponseError, ConfigurationError
from airflow_aliyun_tasks.services import (
    ADB_SPARK,
    ADB_SPARK_STATES,
    DATAWORKS,
    DATAWORKS_STATES,
    DATAWORKS_WORKFLOW,
    DATAWORKS_WORKFLOW_STATES,
    DLF,
    DLF_STATES,
    EMR_SERVERLESS_SPARK,
    EMR_SERVERLESS_SPARK_STATES,
    FC_ASYNC_TASK,
    FC_ASYNC_TASK_STATES,
    FLINK_JOB,
    FLINK_JOB_STATES,
    MAX_ID_LENGTH,
    MMA,
    MMA_STATES,
    PAI_DLC,
    PAI_DLC_STATES,
    PDS,
    PDS_STATES,
    SERVICES,
    ApiRequest,
    ServiceSpec,
    get_service,
    ids_from_response,
    parse_dataworks,
    parse_dlf,
    parse_mma,
    parse_pds,
    validate_id,
)
from airflow_aliyun_tasks.signing import JSON_CONTENT_TYPE
from airflow_aliyun_tasks.status import (
    CANCELLED,
    FAILED,
    PARTIALLY_SUCCEEDED,
    RUNNING,
    STATES,
    SUCCEEDED,
    UNKNOWN,
    TaskStatus,
)

FUZZ_EXAMPLES = int(os.environ.get("ALIYUN_FUZZ_EXAMPLES", "300"))

# --------------------------------------------------------------------------- documentation samples
# Verbatim from the research brief A.1-A.3 (including the "..." elisions of the ids).

DLF_DOC_SAMPLE = """{"Code":"OK","Message":"success","RequestId":"B7F4B621-...","Success":true,
   "TaskStatus":{"Status":"KILLED","Message":"successful"}}"""

DATAWORKS_DOC_SAMPLE = """{"RequestId":"5E2BFE96-...","JobStatus":{"JobId":"C664CDE3-...","JobType":"Create",
   "Completed":"False","Status":"Success","Error":"Not Found","CreateTime":1729063449802}}"""

MMA_DOC_SAMPLE = """{"requestId":"688003E1-...","data":{"id":2523,"sourceId":2000017,"type":"TASK_CREATE","objectId":232,
   "status":"DONE","running":false,"progress":0,"result":"null","errorMsg":"null",
   "startTime":"2024-12-17 15:44:17","endTime":"2024-12-17 17:44:17","createTime":"2024-12-17 15:44:00"}}"""

# A.4 documents the fields but gives no sample: one with every documented field.
PDS_DOC_FIELDS = (
    "async_task_id",
    "state",
    "status",
    "error_code",
    "error_message",
    "message",
    "err_code",
    "total_process",
    "consumed_process",
    "skipped_process",
    "failed_process",
    "url",
    "uncompress_file_list",
    "category",
    "task_type",
    "created_at",
    "started_at",
    "finished_at",
)


def pds_sample(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "async_task_id": "4221bf6e6ab43e7ba3c34c0ac4a1d9ba6e4c0e03",
        "state": "Failed",
        "status": "Failed",
        "error_code": "InternalError",
        "error_message": "copy of 3 files failed",
        "message": "deprecated message",
        "err_code": 500,
        "total_process": 10,
        "consumed_process": 4,
        "skipped_process": 1,
        "failed_process": 3,
        "url": "https://example.invalid/archive.zip",
        "uncompress_file_list": [{"name": "a.txt"}, {"name": "b.txt"}],
        "category": "file",
        "task_type": "copy",
        "created_at": "2024-12-17T07:44:00.000Z",
        "started_at": "2024-12-17T07:44:01.000Z",
        "finished_at": "2024-12-17T07:45:17.000Z",
    }
    body.update(overrides)
    return body


IDS = {"async_task_id": "t-1"}


def parse(spec: ServiceSpec, body: Any, request_id: str | None = None) -> TaskStatus:
    return spec.parse(body, dict(IDS), request_id)


# --------------------------------------------------------------------------- doc samples


def test_pds_sample_has_every_documented_field() -> None:
    assert tuple(pds_sample()) == PDS_DOC_FIELDS


def test_dlf_doc_sample() -> None:
    body = json.loads(DLF_DOC_SAMPLE)
    status = parse_dlf(body, dict(IDS), "header-id")
    assert status == TaskStatus(
        service="dlf",
        ids=IDS,
        state=CANCELLED,
        raw_status="KILLED",
        progress=None,
        message="successful",
        error_code=None,
        request_id="B7F4B621-...",  # the body's id wins over the header's
        raw=body,
    )
    assert status.is_terminal


def test_dataworks_doc_sample() -> None:
    body = json.loads(DATAWORKS_DOC_SAMPLE)
    status = parse_dataworks(body, {"job_id": "C664CDE3-..."}, None)
    # The example is inconsistent (Completed "False" with Status "Success"): Status decides.
    assert status == TaskStatus(
        service="dataworks",
        ids={"job_id": "C664CDE3-..."},
        state=SUCCEEDED,
        raw_status="Success",
        progress=None,
        message=None,  # "Not Found" in Error is ignored on success
        error_code=None,
        request_id="5E2BFE96-...",
        raw=body,
    )


def test_mma_doc_sample() -> None:
    body = json.loads(MMA_DOC_SAMPLE)
    ids = {"source_id": "2000017", "async_task_id": "2523"}
    status = parse_mma(body, ids, None)
    assert status == TaskStatus(
        service="mma",
        ids=ids,
        state=SUCCEEDED,
        raw_status="DONE",
        progress=0.0,
        message=None,  # "null" strings
        error_code=None,
        request_id="688003E1-...",
        raw=body,
    )


@pytest.mark.parametrize(
    ("state", "expected", "message", "error_code"),
    [
        ("Failed", FAILED, "copy of 3 files failed", "InternalError"),
        ("PartialSucceed", PARTIALLY_SUCCEEDED, "copy of 3 files failed", "InternalError"),
        ("Running", RUNNING, "copy of 3 files failed", "InternalError"),
        ("Succeed", SUCCEEDED, "copy of 3 files failed", "InternalError"),
    ],
)
def test_pds_full_sample(state: str, expected: str, message: str, error_code: str) -> None:
    body = json.loads(json.dumps(pds_sample(state=state, status=state)))
    status = parse_pds(body, dict(IDS), "x-ca-request-id-1")
    assert status == TaskStatus(
        service="pds",
        ids=IDS,
        state=expected,
        raw_status=state,
        progress=0.4,
        message=message,
        error_code=error_code,
        request_id="x-ca-request-id-1",  # PDS bodies carry no request id
        raw=body,
        result=body["url"],  # the archive's download address, a documented field
    )


@pytest.mark.parametrize(
    ("spec", "body"),
    [
        (DLF, json.loads(DLF_DOC_SAMPLE)),
        (DATAWORKS, json.loads(DATAWORKS_DOC_SAMPLE)),
        (MMA, json.loads(MMA_DOC_SAMPLE)),
        (PDS, pds_sample()),
    ],
    ids=["dlf", "dataworks", "mma", "pds"],
)
def test_doc_samples_round_trip(spec: ServiceSpec, body: dict[str, Any]) -> None:
    before = json.dumps(body, sort_keys=True)
    status = parse(spec, body)
    assert json.dumps(body, sort_keys=True) == before, "parser mutated the body"
    assert status.raw == body
    assert status.raw is not body
    assert TaskStatus.from_dict(status.to_dict()) == status
    assert TaskStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


# --------------------------------------------------------------------------- DLF quirks


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("KILLED", CANCELLED),
        ("killed", CANCELLED),
        ("Killed", CANCELLED),
        ("Running", RUNNING),
        ("RUNNING", RUNNING),
        ("running", RUNNING),
        ("SUCCESS", SUCCEEDED),
        ("Success", SUCCEEDED),
        ("success", SUCCEEDED),
        ("Failed", FAILED),
        ("NotStarted", RUNNING),
        ("Executing", RUNNING),
        (" Running\n", RUNNING),
    ],
)
def test_dlf_case_insensitive(raw: str, expected: str) -> None:
    status = parse(DLF, {"TaskStatus": {"Status": raw}})
    assert status.state == expected
    assert status.raw_status == raw.strip()


def test_dlf_error_code_only_when_failed() -> None:
    failed = parse(DLF, {"Code": "InternalError", "TaskStatus": {"Status": "Failed", "Message": "boom"}})
    assert failed.state == FAILED
    assert failed.error_code == "InternalError"
    assert failed.message == "boom"
    running = parse(DLF, {"Code": "InternalError", "TaskStatus": {"Status": "Running"}})
    assert running.error_code is None


@pytest.mark.parametrize("code", ["OK", "ok", None, "null", ""])
def test_dlf_failed_task_with_ok_call_code_has_no_error_code(code: str | None) -> None:
    # ``Code`` is the API call's code; "OK" is not an error code of a failed task.
    status = parse(DLF, {"Code": code, "TaskStatus": {"Status": "Failed", "Message": "boom"}})
    assert status.state == FAILED
    assert status.error_code is None


def test_dlf_request_id_falls_back_to_header() -> None:
    assert parse(DLF, {"TaskStatus": {"Status": "Running"}}, "hdr").request_id == "hdr"
    assert parse(DLF, {"RequestId": "null", "TaskStatus": {"Status": "Running"}}, "hdr").request_id == "hdr"
    assert parse(DLF, {"TaskStatus": {"Status": "Running"}}).request_id is None


# --------------------------------------------------------------------------- DataWorks quirks


@pytest.mark.parametrize("completed", ["True", "False", "true", True, False, None, ""])
@pytest.mark.parametrize("create_time", [1729063449802, "1729063449802", "2024-10-16 15:24:09", None])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Running", RUNNING), ("Success", SUCCEEDED), ("Fail", FAILED), ("Cancel", CANCELLED)],
)
def test_dataworks_completed_and_create_time_do_not_matter(
    completed: Any, create_time: Any, raw: str, expected: str
) -> None:
    body = {
        "RequestId": "r",
        "JobStatus": {"JobId": "j", "Completed": completed, "CreateTime": create_time, "Status": raw},
    }
    status = parse(DATAWORKS, body)
    assert status.state == expected
    assert status.raw_status == raw
    assert status.raw == body


def test_dataworks_inconsistent_doc_example() -> None:
    status = parse(DATAWORKS, {"JobStatus": {"Completed": "False", "Status": "Success"}})
    assert status.state == SUCCEEDED


@pytest.mark.parametrize(("raw", "expected"), [("Fail", FAILED), ("Cancel", CANCELLED), ("Running", RUNNING)])
def test_dataworks_error_is_the_message_unless_success(raw: str, expected: str) -> None:
    status = parse(DATAWORKS, {"JobStatus": {"Status": raw, "Error": "quota exceeded\n"}})
    assert status.state == expected
    assert status.message == "quota exceeded"
    assert status.error_code is None


def test_dataworks_request_id_falls_back_to_header() -> None:
    assert parse(DATAWORKS, {"JobStatus": {"Status": "Running"}}, "hdr").request_id == "hdr"


# --------------------------------------------------------------------------- MMA quirks


def test_mma_null_strings_become_none() -> None:
    status = parse(
        MMA, {"requestId": "null", "data": {"status": "FAILED", "result": "null", "errorMsg": "null"}}, "h"
    )
    assert status.state == FAILED
    assert status.message is None
    assert status.request_id == "h"


@pytest.mark.parametrize("null", ["null", "NULL", "Null", " null\n", "", "   ", None])
def test_mma_null_status_is_unknown(null: str | None) -> None:
    status = parse(MMA, {"data": {"status": null}})
    assert status.state == UNKNOWN
    assert status.raw_status is None


def test_mma_trailing_newlines_stripped() -> None:
    status = parse(
        MMA,
        {
            "requestId": "688003E1-...\n",
            "data": {
                "status": "FAILED\n",
                "errorMsg": "table not found\n",
                "startTime": "2024-12-17 15:44:17\n",
            },
        },
    )
    assert status.state == FAILED
    assert status.raw_status == "FAILED"
    assert status.message == "table not found"
    assert status.request_id == "688003E1-..."
    # raw stays as received
    assert status.raw["data"]["startTime"] == "2024-12-17 15:44:17\n"


def test_mma_result_is_message_when_no_error_and_not_succeeded() -> None:
    failed = parse(MMA, {"data": {"status": "FAILED", "errorMsg": "null", "result": "partial\n"}})
    assert failed.message == "partial"
    errored = parse(MMA, {"data": {"status": "FAILED", "errorMsg": "bad", "result": "partial"}})
    assert errored.message == "bad"
    done = parse(MMA, {"data": {"status": "DONE", "errorMsg": "null", "result": "42 tables"}})
    assert done.message is None


@pytest.mark.parametrize(
    ("raw", "running", "expected"),
    [
        ("MIGRATING", True, RUNNING),
        ("SOMETHING_NEW", True, RUNNING),
        (None, True, RUNNING),
        ("null", True, RUNNING),
        ("SOMETHING_NEW", False, UNKNOWN),
        ("SOMETHING_NEW", None, UNKNOWN),
        ("SOMETHING_NEW", "true", UNKNOWN),  # only a real boolean counts
        ("SOMETHING_NEW", 1, UNKNOWN),
        # a recognized status wins over the flag
        ("DONE", True, SUCCEEDED),
        ("FAILED", True, FAILED),
        ("DOING", False, RUNNING),
        ("STOPPED", True, CANCELLED),
    ],
)
def test_mma_running_flag(raw: str | None, running: Any, expected: str) -> None:
    assert parse(MMA, {"data": {"status": raw, "running": running}}).state == expected


@pytest.mark.parametrize(
    "raw", ["FAILED", "FAIL", "PARTIAL_FAILED", "FAILURE", "SCHEMA_FAIL", "failed_retry", "TaskFailed"]
)
@pytest.mark.parametrize("running", [True, False, None])
def test_mma_status_containing_fail_is_failed(raw: str, running: Any) -> None:
    status = parse(MMA, {"data": {"status": raw, "running": running}})
    assert status.state == FAILED
    assert status.raw_status == raw


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (0, 0.0),
        (1, 0.01),
        (50, 0.5),
        (99.5, 0.995),
        (100, 1.0),
        (150, 1.0),
        (-5, 0.0),
        (None, None),
        ("50", None),
        (True, None),
        (False, None),
        ([50], None),
        ({"p": 50}, None),
        (float("inf"), 1.0),
        (float("-inf"), 0.0),
        (float("nan"), None),
        pytest.param(10**400, None, id="10**400"),  # json.loads accepts it: no OverflowError
    ],
)
def test_mma_progress_percent(progress: Any, expected: float | None) -> None:
    status = parse(MMA, {"data": {"status": "DOING", "progress": progress}})
    assert status.progress == (None if expected is None else pytest.approx(expected))
    if status.progress is not None:
        assert isinstance(status.progress, float)


def test_mma_request_id_casings() -> None:
    assert parse(MMA, {"requestId": "a", "RequestId": "b", "data": {}}).request_id == "a"
    assert parse(MMA, {"RequestId": "b", "data": {}}).request_id == "b"
    assert parse(MMA, {"data": {}}, "h").request_id == "h"


# --------------------------------------------------------------------------- PDS quirks


@pytest.mark.parametrize(
    ("state", "status", "expected_raw", "expected"),
    [
        ("Running", "Succeed", "Running", RUNNING),  # state preferred
        ("Succeed", "Running", "Succeed", SUCCEEDED),
        ("Failed", "Running", "Failed", FAILED),
        ("PartialSucceed", "Failed", "PartialSucceed", PARTIALLY_SUCCEEDED),
        ("null", "Running", "Running", RUNNING),  # "null" state: status used
        ("", "Failed", "Failed", FAILED),
    ],
)
def test_pds_state_preferred_over_status(state: str, status: str, expected_raw: str, expected: str) -> None:
    result = parse(PDS, {"state": state, "status": status})
    assert result.raw_status == expected_raw
    assert result.state == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Running", RUNNING),
        ("Succeed", SUCCEEDED),
        ("PartialSucceed", PARTIALLY_SUCCEEDED),
        ("Failed", FAILED),
    ],
)
def test_pds_status_fallback_when_state_absent(status: str, expected: str) -> None:
    for body in ({"status": status}, {"state": None, "status": status}):
        result = parse(PDS, body)
        assert result.raw_status == status
        assert result.state == expected


@pytest.mark.parametrize("raw", ["PartialSucceed", "partialsucceed", "PARTIALSUCCEED", "PartialSucceed\n"])
def test_pds_partial_succeed(raw: str) -> None:
    status = parse(PDS, {"state": raw})
    assert status.state == PARTIALLY_SUCCEEDED
    assert status.is_terminal


@pytest.mark.parametrize(
    ("consumed", "total", "expected"),
    [
        (0, 10, 0.0),
        (4, 10, 0.4),
        (10, 10, 1.0),
        (15, 10, 1.0),
        (-1, 10, 0.0),
        (1, 3, 1 / 3),
        (2.5, 10.0, 0.25),
        (5, 0, None),
        (0, 0, None),
        (5, -10, None),
        (None, 10, None),
        (5, None, None),
        ("5", 10, None),
        (5, "10", None),
        (True, 10, None),
        (5, True, None),
        (float("inf"), float("inf"), None),  # would be NaN
        (float("nan"), 10, None),
        (5, float("nan"), None),
        pytest.param(1.0, 10**400, None, id="1.0/10**400"),  # int too large for a float
        pytest.param(10**400, 10**401, 0.1, id="10**400/10**401"),
        (1, float("inf"), 0.0),
    ],
)
def test_pds_progress(consumed: Any, total: Any, expected: float | None) -> None:
    body: dict[str, Any] = {"state": "Running"}
    if consumed is not None:
        body["consumed_process"] = consumed
    if total is not None:
        body["total_process"] = total
    status = parse(PDS, body)
    assert status.progress == (None if expected is None else pytest.approx(expected))


def test_pds_message_and_error_code_fallbacks() -> None:
    status = parse(PDS, {"state": "Failed", "message": "old message", "err_code": 500})
    assert status.message == "old message"
    assert status.error_code == "500"
    status = parse(PDS, {"state": "Failed", "error_message": "null", "message": "m", "error_code": ""})
    assert status.message == "m"
    assert status.error_code is None


def test_pds_request_id_is_the_callers() -> None:
    assert parse(PDS, {"state": "Running", "RequestId": "body"}, "hdr").request_id == "hdr"
    assert parse(PDS, {"state": "Running"}).request_id is None


# --------------------------------------------------------------------------- unknown statuses


def _body_with_status(spec: ServiceSpec, raw: Any) -> dict[str, Any]:
    return {
        "dlf": {"TaskStatus": {"Status": raw}},
        "dataworks": {"JobStatus": {"Status": raw}},
        "mma": {"data": {"status": raw, "running": False}},
        "pds": {"state": raw},
        "emr_serverless_spark": {"jobRun": {"state": raw}},
        "dataworks_workflow": {"WorkflowInstance": {"Status": raw}},
        "pai_dlc": {"Status": raw},
        "adb_spark": {"Data": {"State": raw}},
        "flink_job": {"data": {"status": {"currentJobStatus": raw}}},
        "fc_async_task": {"status": raw},
    }[spec.name]


ALL_SPECS = pytest.mark.parametrize("spec", list(SERVICES.values()), ids=list(SERVICES))


@ALL_SPECS
@pytest.mark.parametrize("raw", ["Mystery", "QUEUED", "Waiting", "Succeed?", "Done-ish", "完成"])
def test_unrecognized_status_is_unknown_and_kept(spec: ServiceSpec, raw: str) -> None:
    status = parse(spec, _body_with_status(spec, raw))
    assert status.state == UNKNOWN
    assert status.raw_status == raw
    assert not status.is_terminal


@ALL_SPECS
def test_missing_status_is_unknown(spec: ServiceSpec) -> None:
    if spec is PDS:
        body: dict[str, Any] = {"state": "null"}
    else:
        body = _body_with_status(spec, None)
    status = parse(spec, body)
    assert status.state == UNKNOWN
    assert status.raw_status is None


# --------------------------------------------------------------------------- state tables


def _table_cases() -> list[Any]:
    cases = []
    for spec, table in (
        (DLF, DLF_STATES),
        (DATAWORKS, DATAWORKS_STATES),
        (MMA, MMA_STATES),
        (PDS, PDS_STATES),
        (DATAWORKS_WORKFLOW, DATAWORKS_WORKFLOW_STATES),
        (EMR_SERVERLESS_SPARK, EMR_SERVERLESS_SPARK_STATES),
        (PAI_DLC, PAI_DLC_STATES),
        (ADB_SPARK, ADB_SPARK_STATES),
        (FLINK_JOB, FLINK_JOB_STATES),
        (FC_ASYNC_TASK, FC_ASYNC_TASK_STATES),
    ):
        for key, expected in table.items():
            cases.append(pytest.param(spec, key, expected, id=f"{spec.name}-{key}"))
    return cases


@pytest.mark.parametrize(("spec", "key", "expected"), _table_cases())
def test_state_table_entry(spec: ServiceSpec, key: str, expected: str) -> None:
    assert key == key.lower(), "table keys are compared lower-cased"
    assert expected in STATES
    for raw in (key, key.upper(), key.title(), key.capitalize(), f" {key}\n"):
        status = parse(spec, _body_with_status(spec, raw))
        assert status.state == expected, raw
        assert status.raw_status == raw.strip()


def test_state_tables_cover_documented_values() -> None:
    assert {DLF_STATES[v.lower()] for v in ("Running", "Success", "KILLED")} == {
        RUNNING,
        SUCCEEDED,
        CANCELLED,
    }
    assert [DATAWORKS_STATES[v.lower()] for v in ("Success", "Fail", "Cancel", "Running")] == [
        SUCCEEDED,
        FAILED,
        CANCELLED,
        RUNNING,
    ]
    assert [MMA_STATES[v.lower()] for v in ("INIT", "DOING", "DONE", "FAILED")] == [
        RUNNING,
        RUNNING,
        SUCCEEDED,
        FAILED,
    ]
    assert [PDS_STATES[v.lower()] for v in ("Running", "Succeed", "PartialSucceed", "Failed")] == [
        RUNNING,
        SUCCEEDED,
        PARTIALLY_SUCCEEDED,
        FAILED,
    ]
    assert CANCELLED not in PDS_STATES.values()  # none documented
    documented = (
        "NotRun",
        "Running",
        "WaitTime",
        "CheckingCondition",
        "WaitResource",
        "Failure",
        "Success",
        "Checking",
    )
    assert [DATAWORKS_WORKFLOW_STATES[v.lower()] for v in documented] == [
        RUNNING,
        RUNNING,
        RUNNING,
        RUNNING,
        RUNNING,
        FAILED,
        SUCCEEDED,
        RUNNING,
    ]
    assert set(DATAWORKS_WORKFLOW_STATES) == {v.lower() for v in documented}
    assert CANCELLED not in DATAWORKS_WORKFLOW_STATES.values()  # a stopped instance is a Failure
    # every value of the SDK model's GetJobResponseBody.status docstring
    documented = [
        "Creating",
        "Queuing",
        "Bidding",
        "EnvPreparing",
        "SanityChecking",
        "Running",
        "Restarting",
        "Stopping",
        "SucceededReserving",
        "FailedReserving",
        "Succeeded",
        "Failed",
        "Stopped",
    ]
    assert [PAI_DLC_STATES[v.lower()] for v in documented] == [RUNNING] * 8 + [
        SUCCEEDED,
        FAILED,
        SUCCEEDED,
        FAILED,
        CANCELLED,
    ]
    assert len(PAI_DLC_STATES) == len(documented)
    # every value of the SDK model's GetSparkAppStateResponseBodyData.state docstring
    documented = [
        "SUBMITTED",
        "STARTING",
        "RUNNING",
        "FAILING",
        "FAILED",
        "KILLING",
        "KILLED",
        "SUCCEEDING",
        "COMPLETED",
        "FATAL",
        "UNKNOWN",
    ]
    assert [ADB_SPARK_STATES[v.lower()] for v in documented] == [
        RUNNING,
        RUNNING,
        RUNNING,
        RUNNING,
        FAILED,
        RUNNING,
        CANCELLED,
        RUNNING,
        SUCCEEDED,
        FAILED,
        UNKNOWN,
    ]
    assert set(ADB_SPARK_STATES) == {v.lower() for v in documented}

    # every value of the SDK model's JobStatus.current_job_status docstring
    documented = ["STARTING", "RUNNING", "CANCELLING", "FAILED", "CANCELLED", "FINISHED"]
    assert [FLINK_JOB_STATES[v.lower()] for v in documented] == [
        RUNNING,
        RUNNING,
        RUNNING,
        FAILED,
        CANCELLED,
        SUCCEEDED,
    ]
    assert len(FLINK_JOB_STATES) == len(documented)
    # every value of the SDK model's AsyncTask.status docstring, and ListAsyncTasksRequest's Dequeued
    documented = [
        "Enqueued",
        "Dequeued",
        "Running",
        "Retrying",
        "Stopping",
        "Succeeded",
        "Failed",
        "Invalid",
        "Expired",
        "Stopped",
    ]
    assert [FC_ASYNC_TASK_STATES[v.lower()] for v in documented] == [RUNNING] * 5 + [
        SUCCEEDED,
        FAILED,
        FAILED,
        FAILED,
        CANCELLED,
    ]
    assert len(FC_ASYNC_TASK_STATES) == len(documented)


# --------------------------------------------------------------------------- wrong shapes

NON_OBJECTS = [None, [], [{"Status": "Running"}], "Running", "", 0, 1.5, True, False]


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        (DLF, "TaskStatus"),
        (DATAWORKS, "JobStatus"),
        (MMA, "data"),
        (DATAWORKS_WORKFLOW, "WorkflowInstance"),
        (FLINK_JOB, "data"),
    ],
    ids=["dlf", "dw", "mma", "dw_workflow", "flink_job"],
)
@pytest.mark.parametrize("value", NON_OBJECTS, ids=repr)
def test_object_not_an_object(spec: ServiceSpec, key: str, value: Any) -> None:
    with pytest.raises(BadResponseError, match=f"no '{key}' object"):
        parse(spec, {key: value, "RequestId": "r"})


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        (DLF, "TaskStatus"),
        (DATAWORKS, "JobStatus"),
        (MMA, "data"),
        (DATAWORKS_WORKFLOW, "WorkflowInstance"),
        (FLINK_JOB, "data"),
    ],
    ids=["dlf", "dw", "mma", "dw_workflow", "flink_job"],
)
def test_object_missing(spec: ServiceSpec, key: str) -> None:
    with pytest.raises(BadResponseError, match=f"no '{key}' object"):
        parse(spec, {"RequestId": "r", "Code": "OK", key.upper(): {"Status": "Running"}})  # case-sensitive
    with pytest.raises(BadResponseError):
        parse(spec, {})


@ALL_SPECS
@pytest.mark.parametrize("body", NON_OBJECTS, ids=repr)
def test_body_not_an_object(spec: ServiceSpec, body: Any) -> None:
    with pytest.raises(BadResponseError, match="response"):
        parse(spec, body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"async_task_id": "a", "error_message": "x"},
        {"state": None},
        {"state": None, "status": None},
        {"state": 1},
        {"state": 1, "status": 2},
        {"state": ["Running"]},
        {"state": {"value": "Running"}},
        {"status": True},
        {"State": "Running"},  # snake_case only
    ],
    ids=repr,
)
def test_pds_without_state_or_status(body: dict[str, Any]) -> None:
    with pytest.raises(BadResponseError, match="neither 'state' nor 'status'"):
        parse(PDS, body)


def test_bad_response_error_is_retryable() -> None:
    with pytest.raises(BadResponseError) as info:
        parse(DLF, {})
    assert info.value.retryable


# --------------------------------------------------------------------------- fuzz

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["null", "", " ", "\n", "True", "False", "0", "-1"])
)
JSON = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _weighted(*pairs: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``one_of`` with integer weights."""
    return st.sampled_from([s for weight, s in pairs for _ in range(weight)]).flatmap(lambda s: s)


_EXTRA_WORDS = ["PartialSucceed", "KILLED", "Succeed", "PARTIAL_FAIL", "MIGRATING", "null", "", "Mystery"]


def _status_text(words: Any) -> st.SearchStrategy[str]:
    """Status words in random case, with the padding quirks."""
    return st.builds(
        lambda word, case, pad: pad[0] + case(word) + pad[1],
        st.sampled_from(sorted(words)),
        st.sampled_from([str, str.lower, str.upper, str.title, str.swapcase]),
        st.sampled_from([("", ""), ("", "\n"), (" ", " "), ("\t", "\r\n")]),
    )


ANY_STATUS_TEXT = _status_text(
    {
        *DLF_STATES,
        *DATAWORKS_STATES,
        *MMA_STATES,
        *PDS_STATES,
        *PAI_DLC_STATES,
        *ADB_SPARK_STATES,
        *FLINK_JOB_STATES,
        *FC_ASYNC_TASK_STATES,
        *_EXTRA_WORDS,
    }
)
NUMBER = _weighted(
    (3, st.integers()),
    (1, st.integers(min_value=-(10**400), max_value=10**400)),
    (3, st.floats(allow_nan=False)),
    (1, st.sampled_from([0, 100, -1, 0.0, float("inf"), float("-inf")])),
)
TEXT_FIELD = _weighted((2, ANY_STATUS_TEXT), (2, st.text(max_size=12)), (1, JSON))
NUMBER_FIELD = _weighted((4, NUMBER), (1, JSON))
BOOL_FIELD = _weighted((4, st.booleans()), (1, st.sampled_from(["True", "False", "true"])), (1, JSON))


def _status_field(table: Mapping[str, str]) -> st.SearchStrategy[Any]:
    return _weighted((6, _status_text(table)), (2, ANY_STATUS_TEXT), (1, JSON))


def _object(fields: Mapping[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()) -> Any:
    """Objects whose known keys appear often, with random value types, plus random extra keys."""
    known = _weighted(
        (
            3,
            st.fixed_dictionaries(
                {k: fields[k] for k in required},
                optional={k: v for k, v in fields.items() if k not in required},
            ),
        ),
        (1, st.fixed_dictionaries({}, optional=dict(fields))),
    )
    extra = st.dictionaries(st.text(max_size=8), JSON, max_size=3)
    return st.builds(lambda e, k: {**e, **k}, extra, known)


def _top(fields: Mapping[str, st.SearchStrategy[Any]], required: tuple[str, ...]) -> Any:
    return _weighted((5, _object(fields, required)), (1, JSON))


def _inner(obj: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _weighted((5, obj), (1, JSON))


_dlf_inner = _object({"Status": _status_field(DLF_STATES), "Message": TEXT_FIELD}, ("Status",))
_dw_inner = _object(
    {
        "JobId": TEXT_FIELD,
        "JobType": TEXT_FIELD,
        "Completed": BOOL_FIELD,
        "Status": _status_field(DATAWORKS_STATES),
        "Error": TEXT_FIELD,
        "CreateTime": _weighted((1, NUMBER), (1, st.text(max_size=14))),
    },
    ("Status",),
)
_mma_inner = _object(
    {
        "status": _status_field(MMA_STATES),
        "running": BOOL_FIELD,
        "progress": NUMBER_FIELD,
        "result": TEXT_FIELD,
        "errorMsg": TEXT_FIELD,
        "id": NUMBER_FIELD,
        "startTime": TEXT_FIELD,
    },
    ("status",),
)

_emr_inner = _object(
    {
        "state": _status_field(EMR_SERVERLESS_SPARK_STATES),
        "stateChangeReason": _weighted(
            (3, _object({"code": TEXT_FIELD, "message": TEXT_FIELD}, ())), (1, JSON)
        ),
        "jobRunId": TEXT_FIELD,
        "workspaceId": TEXT_FIELD,
        "submitTime": NUMBER_FIELD,
        "endTime": NUMBER_FIELD,
        "webUI": TEXT_FIELD,
    },
    ("state",),
)

_dw_workflow_inner = _object(
    {
        "Id": NUMBER_FIELD,
        "Status": _status_field(DATAWORKS_WORKFLOW_STATES),
        "Type": TEXT_FIELD,
        "ProjectId": NUMBER_FIELD,
        "StartedTime": NUMBER_FIELD,
        "FinishedTime": NUMBER_FIELD,
        "Tags": JSON,
    },
    ("Status",),
)

_adb_spark_inner = _object(
    {
        "State": _status_field(ADB_SPARK_STATES),
        "Message": TEXT_FIELD,
        "AppId": TEXT_FIELD,
        "AppName": TEXT_FIELD,
        "DBClusterId": TEXT_FIELD,
    },
    ("State",),
)

_flink_failure = _object({"reason": TEXT_FIELD, "message": TEXT_FIELD, "failedAt": NUMBER_FIELD})
_flink_status = _object(
    {
        "currentJobStatus": _status_field(FLINK_JOB_STATES),
        "failure": _inner(_flink_failure),
        "running": JSON,
        "healthScore": NUMBER_FIELD,
    },
    ("currentJobStatus",),
)
_flink_inner = _object(
    {
        "jobId": TEXT_FIELD,
        "executionMode": TEXT_FIELD,
        "status": _inner(_flink_status),
        "startTime": NUMBER_FIELD,
        "endTime": NUMBER_FIELD,
    },
    ("status",),
)

BODIES: dict[str, Any] = {
    "dlf": _top(
        {
            "TaskStatus": _inner(_dlf_inner),
            "Code": TEXT_FIELD,
            "Message": TEXT_FIELD,
            "RequestId": TEXT_FIELD,
            "Success": BOOL_FIELD,
        },
        ("TaskStatus",),
    ),
    "dataworks": _top({"JobStatus": _inner(_dw_inner), "RequestId": TEXT_FIELD}, ("JobStatus",)),
    "mma": _top(
        {"data": _inner(_mma_inner), "requestId": TEXT_FIELD, "RequestId": TEXT_FIELD},
        ("data",),
    ),
    "pds": _top(
        {
            "state": _status_field(PDS_STATES),
            "status": _status_field(PDS_STATES),
            "error_code": TEXT_FIELD,
            "error_message": TEXT_FIELD,
            "message": TEXT_FIELD,
            "err_code": NUMBER_FIELD,
            "total_process": NUMBER_FIELD,
            "consumed_process": NUMBER_FIELD,
            "uncompress_file_list": JSON,
        },
        ("state",),
    ),
    "emr_serverless_spark": _top(
        {"jobRun": _inner(_emr_inner), "requestId": TEXT_FIELD, "RequestId": TEXT_FIELD},
        ("jobRun",),
    ),
    "dataworks_workflow": _top(
        {"WorkflowInstance": _inner(_dw_workflow_inner), "RequestId": TEXT_FIELD}, ("WorkflowInstance",)
    ),
    "pai_dlc": _top(
        {
            "Status": _status_field(PAI_DLC_STATES),
            "SubStatus": TEXT_FIELD,
            "ReasonCode": TEXT_FIELD,
            "ReasonMessage": TEXT_FIELD,
            "RequestId": TEXT_FIELD,
            "JobId": TEXT_FIELD,
            "Duration": NUMBER_FIELD,
            "StatusHistory": JSON,
        },
        ("Status",),
    ),
    "adb_spark": _top({"Data": _inner(_adb_spark_inner), "RequestId": TEXT_FIELD}, ("Data",)),
    "flink_job": _top(
        {
            "data": _inner(_flink_inner),
            "requestId": TEXT_FIELD,
            "success": BOOL_FIELD,
            "httpCode": NUMBER_FIELD,
            "errorCode": TEXT_FIELD,
            "errorMessage": TEXT_FIELD,
        },
        ("data",),
    ),
    "fc_async_task": _top(
        {
            "status": _status_field(FC_ASYNC_TASK_STATES),
            "taskId": TEXT_FIELD,
            "taskErrorMessage": TEXT_FIELD,
            "requestId": TEXT_FIELD,
            "returnPayload": TEXT_FIELD,
            "destinationStatus": TEXT_FIELD,
            "durationMs": NUMBER_FIELD,
            "events": JSON,
        },
        ("status",),
    ),
}

FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _check_text(value: Any) -> None:
    if value is not None:
        assert isinstance(value, str)
        assert value
        assert value == value.strip()
        assert value.lower() != "null"


def _fuzz(name: str, body: Any, request_id: str | None) -> str:
    """Parse one body; return the state, or "bad" for BadResponseError (the only error allowed)."""
    spec = SERVICES[name]
    ids = {"async_task_id": "t-1"}
    try:
        status = spec.parse(body, ids, request_id)
    except BadResponseError:
        return "bad"
    assert isinstance(body, dict)
    assert isinstance(status, TaskStatus)
    assert status.service == name
    assert status.ids == ids
    assert status.state in STATES
    assert status.raw == _without_dunder_keys(body)
    _check_text(status.raw_status)
    _check_text(status.message)
    _check_text(status.error_code)
    assert status.request_id is None or isinstance(status.request_id, str)
    if status.progress is not None:
        assert isinstance(status.progress, float)
        assert 0.0 <= status.progress <= 1.0
    if status.raw_status is None:
        assert status.state in ({UNKNOWN, RUNNING} if name == "mma" else {UNKNOWN})
    d = status.to_dict()
    assert TaskStatus.from_dict(d) == status
    loaded = json.loads(json.dumps(d))
    back = TaskStatus.from_dict(loaded)
    assert back == status
    assert back.to_dict() == d
    return status.state


REQUEST_IDS = st.none() | st.from_regex(r"[A-F0-9-]{1,36}", fullmatch=True)


@pytest.mark.parametrize("name", list(SERVICES))
def test_parser_fuzz(name: str) -> None:
    """Bodies shaped like the service's, with known keys often present and random value types."""
    outcomes: set[str] = set()

    @FUZZ_SETTINGS
    @given(body=BODIES[name], request_id=REQUEST_IDS)
    def run(body: Any, request_id: str | None) -> None:
        outcomes.add(_fuzz(name, body, request_id))

    run()
    if FUZZ_EXAMPLES >= 100:
        # Guard against a strategy that only ever reaches BadResponseError.
        assert "bad" in outcomes
        # Two states at least: a service with three (DataWorks workflow instances) missed one of
        # them in about one run of ten at 300 examples.
        assert len(outcomes - {"bad", UNKNOWN}) >= 2, outcomes


@pytest.mark.parametrize("name", list(SERVICES))
@settings(FUZZ_SETTINGS, max_examples=max(FUZZ_EXAMPLES // 3, 1))
@given(body=JSON)
def test_parser_fuzz_unbiased(name: str, body: Any) -> None:
    """Any JSON value at all (the biased bodies above include these too, less often)."""
    _fuzz(name, body, None)


# --------------------------------------------------------------------------- specs and requests

VALID_IDS: dict[str, dict[str, Any]] = {
    "dlf": {"async_task_id": "1ea1c8a5-3f43-4e07-a1a2-a0b7e1c3c0a2", "catalog_id": "1344371"},
    "dataworks": {"job_id": "C664CDE3-1234-5678-9ABC-DEF012345678"},
    "mma": {"source_id": "2000017", "async_task_id": "2523"},
    "pds": {"async_task_id": "4221bf6e6ab43e7ba3c34c0ac4a1d9ba6e4c0e03", "domain_id": "bj12345"},
    "emr_serverless_spark": {"workspace_id": "w-d2d82aa09151abcd", "job_run_id": "jr-93d98d2f7061abcd"},
    "dataworks_workflow": {"workflow_instance_id": "1234567890123"},
    "pai_dlc": {"job_id": "dlc1a2b3c4d5e6f7"},
    "adb_spark": {"app_id": "s202204132018hzprec1ac0000"},
    "flink_job": {
        "workspace_id": "a14bd5d90a1234",
        "namespace": "default-namespace",
        "job_id": "5af678c0-7db0-4650-94c2-d2604f0a1234",
    },
    "fc_async_task": {
        "function_name": "video-transcode",
        "async_task_id": "airflow-6f1c3a9e-0b1d-5c7e-9a2b-4d5e6f708192",
        "qualifier": "prod",
        "account_id": "1234567890123456",
    },
}


@pytest.mark.parametrize(
    ("name", "action", "version", "style", "method", "signer", "endpoint", "vpc"),
    [
        (
            "dlf",
            "GetAsyncTaskStatus",
            "2020-07-10",
            "ROA",
            "GET",
            "acs3",
            "dlf.{region_id}.aliyuncs.com",
            "dlf-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "dataworks",
            "GetJobStatus",
            "2024-05-18",
            "RPC",
            "GET",
            "acs3",
            "dataworks.{region_id}.aliyuncs.com",
            "dataworks-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "mma",
            "GetMmsAsyncTask",
            "2022-01-04",
            "ROA",
            "GET",
            "acs3",
            "maxcompute.{region_id}.aliyuncs.com",
            "maxcompute-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "pds",
            "GetAsyncTask",
            "2022-03-01",
            "ROA",
            "POST",
            "pds",
            "{domain_id}.api.aliyunpds.com",
            "{domain_id}.api-vpc.aliyunpds.com",
        ),
        (
            "emr_serverless_spark",
            "GetJobRun",
            "2023-08-08",
            "ROA",
            "GET",
            "acs3",
            "emr-serverless-spark.{region_id}.aliyuncs.com",
            "emr-serverless-spark-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "dataworks_workflow",
            "GetWorkflowInstance",
            "2024-05-18",
            "RPC",
            "GET",
            "acs3",
            "dataworks.{region_id}.aliyuncs.com",
            "dataworks-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "pai_dlc",
            "GetJob",
            "2020-12-03",
            "ROA",
            "GET",
            "acs3",
            "pai-dlc.{region_id}.aliyuncs.com",
            "pai-dlc-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "adb_spark",
            "GetSparkAppState",
            "2021-12-01",
            "RPC",
            "POST",
            "acs3",
            "adb.{region_id}.aliyuncs.com",
            "adb-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "flink_job",
            "GetJob",
            "2022-07-18",
            "ROA",
            "GET",
            "acs3",
            "ververica.{region_id}.aliyuncs.com",
            "ververica-vpc.{region_id}.aliyuncs.com",
        ),
        (
            "fc_async_task",
            "GetAsyncTask",
            "2023-03-30",
            "ROA",
            "GET",
            "acs3",
            "{account_id}.{region_id}.fc.aliyuncs.com",
            "{account_id}.{region_id}-internal.fc.aliyuncs.com",
        ),
    ],
    ids=[
        "dlf",
        "dataworks",
        "mma",
        "pds",
        "emr_serverless_spark",
        "dataworks_workflow",
        "pai_dlc",
        "adb_spark",
        "flink_job",
        "fc_async_task",
    ],
)
def test_spec_metadata(
    name: str, action: str, version: str, style: str, method: str, signer: str, endpoint: str, vpc: str
) -> None:
    spec = get_service(name)
    assert spec is SERVICES[name]
    assert spec.name == name
    assert (spec.action, spec.version, spec.style, spec.method, spec.signer) == (
        action,
        version,
        style,
        method,
        signer,
    )
    assert (spec.endpoint, spec.vpc_endpoint) == (endpoint, vpc)


def test_dlf_request() -> None:
    req = DLF.build_request({"async_task_id": "task-1", "catalog_id": "1344371"})
    assert req == ApiRequest(
        method="GET",
        path="/api/metastore/catalogs/tasks",
        query={"TaskId": "task-1", "CatalogId": "1344371"},
        body=b"",
        content_type=None,
    )
    for catalog in ({}, {"catalog_id": None}, {"catalog_id": ""}):
        req = DLF.build_request({"async_task_id": "task-1", **catalog})
        assert req.query == {"TaskId": "task-1"}
        assert req.body == b""


def test_dataworks_request() -> None:
    req = DATAWORKS.build_request({"job_id": "C664CDE3-1234"})
    assert req == ApiRequest(
        method="GET", path="/", query={"JobId": "C664CDE3-1234"}, body=b"", content_type=None
    )


@pytest.mark.parametrize(("source", "task"), [("2000017", "2523"), (2000017, 2523), ("007", "0")])
def test_mma_request(source: Any, task: Any) -> None:
    req = MMA.build_request({"source_id": source, "async_task_id": task})
    assert req == ApiRequest(
        method="GET",
        path=f"/api/v1/mms/datasources/{source}/asyncTasks/{task}",
        query={},
        body=b"",
        content_type=None,
    )


@pytest.mark.parametrize("domain", [{}, {"domain_id": "bj12345"}, {"domain_id": None}])
def test_pds_request(domain: dict[str, Any]) -> None:
    req = PDS.build_request({"async_task_id": "4221bf6e", **domain})
    assert req == ApiRequest(
        method="POST",
        path="/v2/async_task/get",
        query={},
        body=b'{"async_task_id":"4221bf6e"}',
        content_type=JSON_CONTENT_TYPE,
    )
    assert json.loads(req.body) == {"async_task_id": "4221bf6e"}  # no domain_id: it is a host id
    assert b" " not in req.body


def test_validate_ids_returns_strings() -> None:
    assert MMA.validate_ids({"source_id": 1, "async_task_id": 2}) == {"source_id": "1", "async_task_id": "2"}
    assert DLF.validate_ids({"async_task_id": "t"}) == {"async_task_id": "t"}
    assert PDS.validate_ids(VALID_IDS["pds"]) == VALID_IDS["pds"]


@pytest.mark.parametrize(
    "value",
    ["a", "A-b_c.d:e", "1ea1c8a5-3f43-4e07-a1a2-a0b7e1c3c0a2", "x" * MAX_ID_LENGTH, "0", 123, "a.b"],
)
def test_validate_id_accepts(value: Any) -> None:
    assert validate_id("some_id", value) == str(value)


HOSTILE = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="spaces"),
    pytest.param("\t", id="tab"),
    pytest.param(None, id="none"),
    pytest.param("a" * (MAX_ID_LENGTH + 1), id="129-chars"),
    pytest.param("1" * (MAX_ID_LENGTH + 1), id="129-digits"),
    pytest.param("a/b", id="slash"),
    pytest.param("/abs", id="leading-slash"),
    pytest.param("..", id="dotdot"),
    pytest.param("a..b", id="inner-dotdot"),
    pytest.param("../etc", id="traversal"),
    pytest.param("a%2Fb", id="pct-2F"),
    pytest.param("%2F", id="pct-2F-only"),
    pytest.param("a?b=c", id="question"),
    pytest.param("a#b", id="hash"),
    pytest.param("a b", id="space"),
    pytest.param(" a", id="leading-space"),
    pytest.param("a ", id="trailing-space"),
    pytest.param("a&b", id="ampersand"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("\x00", id="nul"),
    pytest.param("a\x00b", id="inner-nul"),
    pytest.param("\n", id="newline"),
    pytest.param("a\nb", id="inner-newline"),
    pytest.param("abc\n", id="trailing-newline"),
    pytest.param("123\n", id="trailing-newline-digits"),
    pytest.param("\nabc", id="leading-newline"),
    pytest.param("a\r\nb", id="crlf"),
    pytest.param("a\x7f", id="del"),
    pytest.param("é", id="e-acute"),
    pytest.param("caf\u00e9", id="cafe"),
    pytest.param("任务", id="cjk"),
    pytest.param("\uff11\uff12\uff13", id="fullwidth-digits"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(1.5, id="float"),
    pytest.param(b"abc", id="bytes"),
    pytest.param(["a"], id="list"),
    pytest.param({"a": 1}, id="dict"),
]

OPTIONAL_EMPTY = (None, "")


def _id_cases() -> list[Any]:
    return [
        pytest.param(spec, p.name, id=f"{spec.name}-{p.name}") for spec in SERVICES.values() for p in spec.ids
    ]


@pytest.mark.parametrize(("spec", "id_name"), _id_cases())
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_ids_rejected(spec: ServiceSpec, id_name: str, value: Any) -> None:
    ids = dict(VALID_IDS[spec.name])
    ids[id_name] = value
    param = next(p for p in spec.ids if p.name == id_name)
    if not param.required and value in OPTIONAL_EMPTY and not isinstance(value, bool):
        # An optional id left empty is omitted, not an error.
        assert id_name not in spec.validate_ids(ids)
        return
    with pytest.raises(ConfigurationError) as info:
        spec.build_request(ids)
    assert info.value.field == id_name
    assert str(info.value).startswith(f"{id_name}: ")
    with pytest.raises(ConfigurationError) as info:
        spec.validate_ids(ids)
    assert info.value.field == id_name


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("integer", [False, True])
def test_validate_id_rejects(value: Any, integer: bool) -> None:
    with pytest.raises(ConfigurationError) as info:
        validate_id("the_id", value, integer=integer)
    assert info.value.field == "the_id"


@pytest.mark.parametrize(
    "value",
    ["12a", "1.5", "-1", -1, "+1", "1e3", "0x10", " 12", "12 ", "1_000", "١٢", "abc", "1" * 20, 10**19],
)
@pytest.mark.parametrize("id_name", ["source_id", "async_task_id"])
def test_mma_ids_must_be_integers(value: Any, id_name: str) -> None:
    ids = dict(VALID_IDS["mma"])
    ids[id_name] = value
    with pytest.raises(ConfigurationError) as info:
        MMA.build_request(ids)
    assert info.value.field == id_name


@pytest.mark.parametrize(
    ("spec", "ids", "field"),
    [
        (DLF, {"async_task_id": "t", "job_id": "j"}, "job_id"),
        (DLF, {"async_task_id": "t", "TaskId": "t"}, "TaskId"),  # wire names are not keyword names
        (DATAWORKS, {"job_id": "j", "zzz": "1", "aaa": "2"}, "aaa"),
        (MMA, {"source_id": "1", "async_task_id": "2", "region_id": "cn-hangzhou"}, "region_id"),
        (PDS, {"async_task_id": "a", "drive_id": "d"}, "drive_id"),
        (PDS, {"async_task_id": "a", "domain": "d"}, "domain"),
    ],
)
def test_unknown_id_names(spec: ServiceSpec, ids: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match="is not an id of") as info:
        spec.build_request(ids)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("spec", "ids", "field"),
    [
        (DLF, {}, "async_task_id"),
        (DLF, {"catalog_id": "1344371"}, "async_task_id"),
        (DATAWORKS, {}, "job_id"),
        (MMA, {}, "source_id"),
        (MMA, {"source_id": "1"}, "async_task_id"),
        (MMA, {"async_task_id": "1"}, "source_id"),
        (PDS, {}, "async_task_id"),
        (PDS, {"domain_id": "bj1"}, "async_task_id"),
    ],
)
def test_missing_required_ids(spec: ServiceSpec, ids: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match="is required") as info:
        spec.build_request(ids)
    assert info.value.field == field


@pytest.mark.parametrize("name", ["", "DLF", "Dataworks", "maxcompute", "oss", " dlf", None, 1, []], ids=repr)
def test_get_service_unknown(name: Any) -> None:
    with pytest.raises(ConfigurationError, match="unknown service") as info:
        get_service(name)
    assert info.value.field == "service"
    assert isinstance(info.value, ValueError)


def test_every_id_has_a_known_location() -> None:
    for spec in SERVICES.values():
        for p in spec.ids:
            assert p.location in {"query", "path", "body", "header", "host"}
            if p.location == "path":
                assert "{" + p.wire + "}" in spec.path


# --- regressions ---------------------------------------------------------------------------


def test_raw_body_with_serde_markers_still_crosses_the_trigger_boundary() -> None:
    """Airflow's serde treats ``__classname__``/``__id__`` dict keys specially; a server body
    that happens to carry them must not break the trigger event or XCom."""
    from airflow_versions import deserialize, serialize

    body = {
        "RequestId": "r",
        "JobStatus": {"Status": "Success", "__classname__": "x", "nested": [{"__id__": 1}]},
        "__version__": 3,
    }
    status = services.parse_dataworks(body, {"job_id": "j"}, None)
    assert deserialize(serialize(status.to_dict()))["state"] == "succeeded"


def test_pds_err_code_zero_is_no_error_code() -> None:
    status = services.parse_pds({"state": "Succeed", "err_code": 0}, {"async_task_id": "a"}, None)
    assert status.error_code is None


def test_pds_non_string_state_falls_back_to_status() -> None:
    status = services.parse_pds({"state": 1, "status": "Running"}, {"async_task_id": "a"}, None)
    assert (status.state, status.raw_status) == ("running", "Running")


def _without_dunder_keys(value: Any) -> Any:
    """What ``TaskStatus.raw`` keeps of a body: keys starting with ``__`` are dropped."""
    if isinstance(value, dict):
        return {k: _without_dunder_keys(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_without_dunder_keys(v) for v in value]
    return value


# --------------------------------------------------------------------------- EMR Serverless Spark

#: The API reference's GetJobRun sample (its ``****`` elisions replaced by letters).
EMR_DOC_SAMPLE = """{"requestId":"DD6B1B2A-5837-5237-ABE4-FF0C8944****","jobRun":{
   "workspaceId":"w-d2d82aa09155abcd","jobRunId":"jr-93d98d2f7061abcd","name":"jobName","state":"Running",
   "stateChangeReason":{"code":"ERR-100000","message":"connection refused"},"submitTime":1684119314000,
   "endTime":1684122914000,"codeType":"SQL","webUI":"http://spark-ui","executionTimeoutSeconds":3600,
   "resourceOwnerId":"150978934701abcd","tags":[],"releaseVersion":"esr-3.3.1","resourceQueueId":"root_queue"}}"""


def test_emr_doc_sample() -> None:
    status = parse(EMR_SERVERLESS_SPARK, json.loads(EMR_DOC_SAMPLE), "header-id")
    assert status.service == "emr_serverless_spark"
    assert status.state == RUNNING
    assert status.raw_status == "Running"
    # A running run's state change reason is not an error.
    assert status.message is None
    assert status.error_code is None
    assert status.request_id == "DD6B1B2A-5837-5237-ABE4-FF0C8944****"
    assert status.raw["jobRun"]["webUI"] == "http://spark-ui"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("Submitted", RUNNING),
        ("Pending", RUNNING),
        ("Running", RUNNING),
        ("Cancelling", RUNNING),
        ("Success", SUCCEEDED),
        ("Failed", FAILED),
        ("Cancelled", CANCELLED),
        ("SUCCESS", SUCCEEDED),
    ],
)
def test_emr_states(state: str, expected: str) -> None:
    assert parse(EMR_SERVERLESS_SPARK, {"jobRun": {"state": state}}).state == expected


@pytest.mark.parametrize(("state", "expected"), [("Failed", FAILED), ("Cancelled", CANCELLED)])
def test_emr_failed_run_carries_the_state_change_reason(state: str, expected: str) -> None:
    body = {
        "requestId": "R-1",
        "jobRun": {
            "state": state,
            "stateChangeReason": {"code": "ERR-200001", "message": "Driver exited 1\n"},
        },
    }
    status = parse(EMR_SERVERLESS_SPARK, body)
    assert status.state == expected
    assert status.message == "Driver exited 1"
    assert status.error_code == "ERR-200001"


@pytest.mark.parametrize("reason", [None, {"code": "ERR-300001", "message": "cancel timed out"}])
def test_emr_cancel_failed_is_a_failure_that_says_the_run_may_still_run(reason: Any) -> None:
    """``CancelFailed`` (listed by the API metadata, defined nowhere): the cancel request failed.
    It ends the wait as failed, as the Airflow and dbt integrations of EMR Serverless Spark read
    it, with a message that says the run may still be running."""
    run: dict[str, Any] = {"state": "CancelFailed"}
    if reason is not None:
        run["stateChangeReason"] = reason
    status = parse(EMR_SERVERLESS_SPARK, {"requestId": "R-2", "jobRun": run})
    assert status.state == FAILED
    assert status.raw_status == "CancelFailed"
    assert status.message is not None
    assert "cancel" in status.message.lower()
    assert "may still be running" in status.message
    if reason is not None:
        assert "cancel timed out" in status.message
        assert status.error_code == "ERR-300001"
    assert parse(EMR_SERVERLESS_SPARK, {"jobRun": {"state": "cancelfailed"}}).state == FAILED


def test_emr_request_sends_the_region_in_the_query() -> None:
    req = EMR_SERVERLESS_SPARK.build_request(
        {"workspace_id": "w-1", "job_run_id": "jr-2"}, region_id="cn-shanghai"
    )
    assert req == ApiRequest(
        method="GET",
        path="/api/v1/workspaces/w-1/jobRuns/jr-2",
        query={"regionId": "cn-shanghai"},
        body=b"",
        content_type=None,
    )
    with pytest.raises(ConfigurationError) as info:
        EMR_SERVERLESS_SPARK.build_request({"workspace_id": "w-1", "job_run_id": "jr-2"})
    assert info.value.field == "region_id"


def test_registry_start_and_cancel_operations() -> None:
    start = EMR_SERVERLESS_SPARK.start_operation("StartJobRun")
    assert start is not None
    assert start.idempotency_param == "clientToken"
    assert start.task_ids == {"workspace_id": "request:workspaceId", "job_run_id": "jobRunId"}
    assert EMR_SERVERLESS_SPARK.cancel is not None
    assert EMR_SERVERLESS_SPARK.cancel.action == "CancelJobRun"
    for spec in SERVICES.values():
        for op in spec.start_operations:
            # Every id of the status call is found in the start response (or its follow-up's), or
            # the request.
            task_ids = op.follow_up.task_ids if op.follow_up else op.task_ids
            assert set(task_ids) >= {p.name for p in spec.ids if p.required}, (spec.name, op.action)
    with_cancel = {name for name, spec in SERVICES.items() if spec.cancel is not None}
    assert with_cancel == {
        "emr_serverless_spark",
        "dataworks_workflow",
        "pai_dlc",
        "adb_spark",
        "flink_job",
        "fc_async_task",
    }


# --------------------------------------------------------------------------- start and cancel operations


def test_mma_result_is_a_documented_field_on_success() -> None:
    from airflow_aliyun_tasks.services import parse_mma

    body = {"requestId": "r", "data": {"status": "DONE", "result": "table t1 migrated\n", "errorMsg": "null"}}
    status = parse_mma(body, {"source_id": "1", "async_task_id": "2"}, None)
    assert status.state == SUCCEEDED
    assert status.result == "table t1 migrated"
    assert status.message is None
    empty = parse_mma({"data": {"status": "DONE", "result": "null"}}, {}, None)
    assert empty.result is None


def test_request_values_and_ids_from_a_start_response() -> None:
    from airflow_aliyun_tasks.services import (
        EMR_SERVERLESS_SPARK,
        MMA,
        ids_from_response,
        lookup,
        request_values,
    )

    op = EMR_SERVERLESS_SPARK.start_operation("StartJobRun")
    assert op is not None
    assert op.idempotency_param == "clientToken"
    assert op.idempotency_location == "body"
    values = op.request_values("/api/v1/workspaces/w%2D1/jobRuns", {"regionId": "cn"}, {"name": "n"})
    assert values == {"name": "n", "regionId": "cn", "workspaceId": "w-1"}
    assert ids_from_response(op.task_ids, {"jobRunId": "jr-1"}, values) == (
        {"workspace_id": "w-1", "job_run_id": "jr-1"},
        [],
    )
    assert ids_from_response(op.task_ids, {"jobRunId": ""}, {}) == ({}, ["workspace_id", "job_run_id"])
    mma = MMA.start_operation("CreateMmsJob")
    assert mma is not None
    found, missing = ids_from_response(
        mma.task_ids, {"data": {"asyncTaskId": 12}}, mma.request_values("/api/v1/mms/datasources/7/jobs")
    )
    assert (found, missing) == ({"source_id": "7", "async_task_id": "12"}, [])
    assert lookup({"a": {"b": True}}, "a.b") is True
    assert lookup({"a": 1}, "a.b") is None
    assert request_values("/x/{id}", "/y/1") == {}


def test_every_start_operation_names_ids_of_its_service() -> None:
    for spec in SERVICES.values():
        for op in spec.start_operations:
            task_ids = op.follow_up.task_ids if op.follow_up else op.task_ids
            assert set(task_ids) <= set(spec.id_names), (spec.name, op.action)
            assert {p.name for p in spec.ids if p.required} <= set(task_ids), (spec.name, op.action)
            assert op.idempotency_location in ("body", "query", "header")
        cancel_params = spec.cancel.params if spec.cancel and spec.cancel.params else ()
        assert {p.name for p in cancel_params} <= set(spec.id_names), spec.name


def test_cancel_request() -> None:
    from airflow_aliyun_tasks.errors import ConfigurationError
    from airflow_aliyun_tasks.services import DATAWORKS, EMR_SERVERLESS_SPARK

    req = EMR_SERVERLESS_SPARK.build_cancel_request({"workspace_id": "w", "job_run_id": "jr"}, "cn-hangzhou")
    assert (req.method, req.path, req.query, req.body) == (
        "DELETE",
        "/api/v1/workspaces/w/jobRuns/jr",
        {"regionId": "cn-hangzhou"},
        b"",
    )
    with pytest.raises(ConfigurationError, match="no operation that cancels"):
        DATAWORKS.build_cancel_request({"job_id": "j"})


# --------------------------------------------------------------------------- DataWorks workflow instances

#: GetWorkflowInstance's answer, with every field of the SDK's response model
#: (alibabacloud-dataworks-public20240518 9.11.0, GetWorkflowInstanceResponseBody).
DATAWORKS_WORKFLOW_SAMPLE = """{"RequestId":"22C97E95-F023-56B5-8852-B1A77A17****","WorkflowInstance":{
   "Id":1234,"Status":"Running","Type":"Normal","Name":"WorkInstance1","ProjectId":100,"EnvType":"Prod",
   "WorkflowId":1234,"WorkflowTaskInstanceId":1234,"UnifiedWorkflowInstanceId":1234,"BizDate":1710239005403,
   "StartedTime":1710239005403,"FinishedTime":null,"CreateTime":1710239005403,"ModifyTime":1710239005403,
   "CreateUser":"1000","ModifyUser":"1000","Owner":"1000","WorkflowParameters":"{}",
   "Tags":[{"Key":"key1","Value":"value1"}]}}"""


def test_dataworks_workflow_sample() -> None:
    status = parse(DATAWORKS_WORKFLOW, json.loads(DATAWORKS_WORKFLOW_SAMPLE), "header-id")
    assert status.service == "dataworks_workflow"
    assert (status.state, status.raw_status, status.message) == (RUNNING, "Running", None)
    assert status.request_id == "22C97E95-F023-56B5-8852-B1A77A17****"
    assert status.raw["WorkflowInstance"]["Tags"] == [{"Key": "key1", "Value": "value1"}]


def test_dataworks_workflow_failure_says_where_the_reason_is() -> None:
    status = parse(DATAWORKS_WORKFLOW, {"WorkflowInstance": {"Status": "Failure"}}, "rid")
    assert status.state == FAILED
    assert status.request_id == "rid"
    assert "task instances" in (status.message or "")
    assert "stopped" in (status.message or "")
    assert status.error_code is None


def test_dataworks_workflow_requests() -> None:
    """Status: GET with the integer ``Id`` in the query. Cancel: a form whose ``Ids`` is a JSON
    array of integers. Starts: form bodies; the follow-up a GET with ``OperationId``."""
    from airflow_aliyun_tasks.services import FORM_CONTENT_TYPE

    ids = {"workflow_instance_id": "1234"}
    assert DATAWORKS_WORKFLOW.build_request(ids) == ApiRequest(
        method="GET", path="/", query={"Id": "1234"}, body=b"", content_type=None
    )
    with pytest.raises(ConfigurationError, match="integer"):
        DATAWORKS_WORKFLOW.build_request({"workflow_instance_id": "wi-1"})
    assert DATAWORKS_WORKFLOW.build_cancel_request(ids) == ApiRequest(
        method="POST", path="/", query={}, body=b"Ids=%5B1234%5D", content_type=FORM_CONTENT_TYPE
    )
    assert DATAWORKS_WORKFLOW.body_encoding == "form"
    assert (DATAWORKS_WORKFLOW.endpoint, DATAWORKS_WORKFLOW.endpoint_exceptions) == (
        DATAWORKS.endpoint,
        DATAWORKS.endpoint_exceptions,
    )
    adhoc = DATAWORKS_WORKFLOW.start_operation("ExecuteAdhocWorkflowInstance")
    assert adhoc is not None
    assert adhoc.task_ids == {"workflow_instance_id": "WorkflowInstanceId"}
    assert (adhoc.idempotency_param, adhoc.follow_up, adhoc.several()) == (None, None, False)
    create = DATAWORKS_WORKFLOW.start_operation("CreateWorkflowInstances")
    assert create is not None
    assert create.follow_up is not None
    assert create.several()
    follow_up = create.follow_up
    assert follow_up.values({"OperationId": "e15ad21c-1", "RequestId": "r"}) == (
        {"OperationId": "e15ad21c-1"},
        [],
    )
    assert follow_up.build_request({"OperationId": "e15ad21c-1"}, "form") == ApiRequest(
        method="GET", path="/", query={"OperationId": "e15ad21c-1"}, body=b"", content_type=None
    )
    created = {"Result": {"Status": "Created", "WorkflowInstanceIds": [11, 12]}}
    assert follow_up.outcome(created) == ("done", "Created")
    assert services.tasks_from_response(follow_up.task_ids, created, {})[0] == [
        {"workflow_instance_id": "11"},
        {"workflow_instance_id": "12"},
    ]
    failed = {"Result": {"Status": "CreateFailure", "FailureMessage": "no nodes"}}
    assert follow_up.outcome(failed) == ("failed", "CreateFailure")
    assert services.lookup(failed, follow_up.message) == "no nodes"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"SuccessInfo": {"1234": {"Success": True, "Message": ""}}}, None),
        ({"SuccessInfo": {"1234": {"Success": "true"}}}, None),
        (
            {"SuccessInfo": {"1234": {"Success": False, "Message": "The instance does not exist."}}},
            "does not exist",
        ),
        ({"SuccessInfo": {"1234": {"Success": False}}}, "was not stopped"),
        ({"SuccessInfo": {"5678": {"Success": True}}}, "no result for workflow instance 1234"),
        ({"SuccessInfo": {}}, "no result"),
        ({"RequestId": "r"}, "no result"),
        ({"SuccessInfo": {"1234": "yes"}}, "no result"),
    ],
)
def test_dataworks_workflow_stop_is_judged_per_instance(body: dict[str, Any], reason: str | None) -> None:
    found = DATAWORKS_WORKFLOW.check_cancel(body, {"workflow_instance_id": "1234"})
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert reason in found


# --------------------------------------------------------------------------- PAI DLC

#: A GetJob body made of the example values of the official SDKs' GetJobResponseBody model
#: (its ``****`` elisions replaced by letters).
PAI_DLC_SAMPLE = """{"RequestId":"473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E","JobId":"dlc7dd4ba0d4d1a","DisplayName":
   "tf-mnist-test","JobType":"TFJob","WorkspaceId":"268","WorkspaceName":"dlc-workspace","ResourceType":"ECS",
   "Status":"Stopped","SubStatus":"Restarting","ReasonCode":"JobStoppedByUser","ReasonMessage":"Job is stopped by user.",
   "GmtCreateTime":"2021-01-12T14:35:01Z","GmtSubmittedTime":"2021-01-12T14:36:01Z","GmtRunningTime":
   "2021-01-12T14:36:21Z","GmtStoppedTime":"2021-01-12T15:36:08Z","GmtFinishTime":"2021-01-12T15:36:08Z",
   "Duration":3602,"Priority":1,"RestartTimes":"0/10","UserCommand":"python /root/code/mnist.py","Pods":[]}"""


def test_pai_dlc_sample() -> None:
    status = parse(PAI_DLC, json.loads(PAI_DLC_SAMPLE), "header-id")
    assert status.service == "pai_dlc"
    assert (status.state, status.raw_status) == (CANCELLED, "Stopped")
    assert (status.error_code, status.message) == ("JobStoppedByUser", "Job is stopped by user.")
    assert status.request_id == "473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E"
    assert status.raw["WorkspaceId"] == "268"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Creating", RUNNING),
        ("Bidding", RUNNING),
        ("EnvPreparing", RUNNING),
        ("Restarting", RUNNING),
        ("Stopping", RUNNING),
        ("SucceededReserving", SUCCEEDED),
        ("FailedReserving", FAILED),
        ("Succeeded", SUCCEEDED),
        ("Failed", FAILED),
        ("Stopped", CANCELLED),
        ("SUCCEEDED", SUCCEEDED),
    ],
)
def test_pai_dlc_states(raw: str, expected: str) -> None:
    assert parse(PAI_DLC, {"Status": raw}).state == expected


@pytest.mark.parametrize(
    ("raw", "message", "error_code"),
    [
        ("Queuing", "Waiting for resources in the quota\n", None),
        ("SucceededReserving", None, None),
        ("FailedReserving", "Waiting for resources in the quota\n", "JobFailed"),
        ("Failed", "Waiting for resources in the quota\n", "JobFailed"),
    ],
)
def test_pai_dlc_reason_is_the_message_and_the_code_only_when_it_ended_badly(
    raw: str, message: str | None, error_code: str | None
) -> None:
    body = {"Status": raw, "ReasonCode": "JobFailed", "ReasonMessage": "Waiting for resources in the quota\n"}
    status = parse(PAI_DLC, body)
    assert (status.message, status.error_code) == (message and message.strip(), error_code)


def test_pai_dlc_request_id_falls_back_to_the_header() -> None:
    assert parse(PAI_DLC, {"Status": "Running"}, "header-id").request_id == "header-id"


def test_pai_dlc_requests() -> None:
    ids = {"job_id": "dlc1a2b3c4d5e6f7"}
    # No NeedDetail: the SDK's model does not say that Status survives NeedDetail=false.
    assert PAI_DLC.build_request(ids) == ApiRequest(
        method="GET", path="/api/v1/jobs/dlc1a2b3c4d5e6f7", query={}, body=b"", content_type=None
    )
    # StopJob: POST with no body and no query, as the SDK sends it.
    assert PAI_DLC.build_cancel_request(ids, "cn-hangzhou") == ApiRequest(
        method="POST", path="/api/v1/jobs/dlc1a2b3c4d5e6f7/stop", query={}, body=b"", content_type=None
    )
    op = PAI_DLC.start_operation("CreateJob")
    assert op is not None
    assert (op.method, op.path, dict(op.task_ids), op.idempotency_param) == (
        "POST",
        "/api/v1/jobs",
        {"job_id": "JobId"},
        None,
    )


@pytest.mark.parametrize(
    ("region", "vpc", "host"),
    [
        ("cn-hangzhou", False, "pai-dlc.cn-hangzhou.aliyuncs.com"),
        ("cn-qingdao", False, "pai-dlc.aliyuncs.com"),
        ("eu-west-1", False, "pai-dlc.aliyuncs.com"),
        ("cn-hangzhou-internal-test-1", False, "pai-dlc.cn-hangzhou-internal-test-1.aliyuncs.com"),
        ("cn-qingdao", True, "pai-dlc-vpc.cn-qingdao.aliyuncs.com"),
        ("ap-southeast-1", True, "pai-dlc-vpc.ap-southeast-1.aliyuncs.com"),
    ],
)
def test_pai_dlc_hosts(region: str, vpc: bool, host: str) -> None:
    assert PAI_DLC.host_for(region, {}, vpc=vpc) == host


# --------------------------------------------------------------------------- AnalyticDB Spark

#: A GetSparkAppState body made of the example values of the official Java SDK's
#: GetSparkAppStateResponseBody model (``com.aliyun.adb20211201``; the Python package's model has
#: no examples), the ``****`` elision replaced by letters.
ADB_SPARK_SAMPLE = """{"RequestId":"D65A809F-34CE-4550-9BC1-0ED21ETG380","Data":{"AppId":"s202204191546hzpread6a896000abcd",
   "AppName":"test","DBClusterId":"amv-clusterxxx","Message":"Insufficient resources.","State":"COMPLETED"}}"""


def test_adb_spark_sample() -> None:
    body = json.loads(ADB_SPARK_SAMPLE)
    status = parse(ADB_SPARK, body, "header-id")
    assert status.service == "adb_spark"
    assert (status.state, status.raw_status) == (SUCCEEDED, "COMPLETED")
    assert (status.message, status.error_code) == (None, None)
    assert status.request_id == "D65A809F-34CE-4550-9BC1-0ED21ETG380"
    assert status.raw["Data"]["DBClusterId"] == "amv-clusterxxx"
    body["Data"]["State"] = "FAILED"
    assert parse(ADB_SPARK, body).message == "Insufficient resources."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SUBMITTED", RUNNING),
        ("FAILING", RUNNING),
        ("SUCCEEDING", RUNNING),
        ("KILLING", RUNNING),
        ("COMPLETED", SUCCEEDED),
        ("FAILED", FAILED),
        ("FATAL", FAILED),
        ("KILLED", CANCELLED),
        ("UNKNOWN", UNKNOWN),
        ("Completed", SUCCEEDED),
    ],
)
def test_adb_spark_states(raw: str, expected: str) -> None:
    status = parse(ADB_SPARK, {"Data": {"State": raw}})
    assert (status.state, status.raw_status) == (expected, raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("SUBMITTED", "Insufficient resources."),  # an alert while it waits
        ("FATAL", "Insufficient resources."),
        ("KILLED", "Insufficient resources."),
        ("COMPLETED", None),
    ],
)
def test_adb_spark_message_is_the_alert_unless_it_completed(raw: str, message: str | None) -> None:
    status = parse(ADB_SPARK, {"Data": {"State": raw, "Message": " Insufficient resources.\n"}})
    assert (status.message, status.error_code) == (message, None)
    assert parse(ADB_SPARK, {"Data": {"State": "FAILED", "Message": None}}).message is None


def test_adb_spark_request_id_falls_back_to_the_header() -> None:
    assert parse(ADB_SPARK, {"Data": {"State": "RUNNING"}}, "header-id").request_id == "header-id"


@pytest.mark.parametrize("body", [{}, {"Data": None}, {"Data": "RUNNING"}, {"State": "RUNNING"}])
def test_adb_spark_without_a_data_object_is_a_bad_response(body: dict[str, Any]) -> None:
    with pytest.raises(BadResponseError, match="Data"):
        parse(ADB_SPARK, body)


def test_adb_spark_requests() -> None:
    ids = {"app_id": "s202204132018hzprec1acabcd"}
    form = "application/x-www-form-urlencoded"
    # AppId in a form body, as the SDK sends it; no DBClusterId (optional in the SDK's model).
    expected = ApiRequest(
        method="POST", path="/", query={}, body=b"AppId=s202204132018hzprec1acabcd", content_type=form
    )
    assert ADB_SPARK.build_request(ids) == expected
    # KillSparkApp: the same form body.
    assert ADB_SPARK.build_cancel_request(ids, "cn-hangzhou") == expected
    assert [p.name for p in ADB_SPARK.ids] == ["app_id"]
    op = ADB_SPARK.start_operation("SubmitSparkApp")
    assert op is not None
    assert (op.method, op.path, dict(op.task_ids), op.idempotency_param, op.body_encoding) == (
        "POST",
        "/",
        {"app_id": "Data.AppId"},
        None,
        None,  # the service's: a form
    )
    assert ADB_SPARK.body_encoding == "form"
    assert ADB_SPARK.cancel is not None
    assert (ADB_SPARK.cancel.action, ADB_SPARK.cancel.method, ADB_SPARK.cancel.params) == (
        "KillSparkApp",
        "POST",
        None,
    )


# --------------------------------------------------------------------------- Flink job instances

#: A GetJob body made of the API reference's example values (its ``****`` elisions replaced by
#: digits), the job of a batch deployment that failed.
FLINK_JOB_SAMPLE = """{"requestId":"CBC799F0-AS7S-1D30-8A4F-882ED4DD1234","success":true,"httpCode":200,
   "errorCode":"","errorMessage":"","data":{"jobId":"354dde66-a3ae-463e-967a-0b4107fd1234",
   "deploymentId":"354dde66-a3ae-463e-967a-0b4107fd1234","deploymentName":"flinktest",
   "namespace":"namespacetest","workspace":"a14bd5d90a1234","executionMode":"BATCH",
   "engineVersion":"vvr-6.0.0-flink-1.15","startTime":1660190835,"endTime":1660190835,
   "status":{"currentJobStatus":"FAILED","failure":{"reason":"JobFailed",
   "message":"java.lang.RuntimeException: sink failed","failedAt":1660190835}}}}"""


def test_flink_job_sample() -> None:
    status = parse(FLINK_JOB, json.loads(FLINK_JOB_SAMPLE), "header-id")
    assert status.service == "flink_job"
    assert (status.state, status.raw_status) == (FAILED, "FAILED")
    assert status.message == "JobFailed: java.lang.RuntimeException: sink failed"
    assert status.error_code is None
    assert status.request_id == "CBC799F0-AS7S-1D30-8A4F-882ED4DD1234"
    assert status.raw["data"]["executionMode"] == "BATCH"
    assert status.raw["data"]["jobId"] == "354dde66-a3ae-463e-967a-0b4107fd1234"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("STARTING", RUNNING),
        ("RUNNING", RUNNING),
        ("CANCELLING", RUNNING),
        ("FINISHED", SUCCEEDED),
        ("FAILED", FAILED),
        ("CANCELLED", CANCELLED),
        ("finished", SUCCEEDED),
        # Flink's own job states are not values of currentJobStatus: unknown, the wait goes on
        ("FAILING", UNKNOWN),
        ("RESTARTING", UNKNOWN),
    ],
)
def test_flink_job_states(raw: str, expected: str) -> None:
    assert parse(FLINK_JOB, {"data": {"status": {"currentJobStatus": raw}}}).state == expected


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ({"reason": "JobFailed", "message": "sink failed"}, "JobFailed: sink failed"),
        ({"message": "sink failed\n"}, "sink failed"),
        ({"reason": "JobFailed"}, "JobFailed"),
        ({"reason": "same", "message": "same"}, "same"),
        ({}, None),
        ("not an object", None),
    ],
)
def test_flink_job_failure_is_the_message(failure: Any, message: str | None) -> None:
    body = {"data": {"status": {"currentJobStatus": "FAILED", "failure": failure}}}
    assert parse(FLINK_JOB, body).message == message
    # only a failed job has a message
    body["data"]["status"]["currentJobStatus"] = "RUNNING"
    assert parse(FLINK_JOB, body).message is None


def test_flink_job_wrong_shapes() -> None:
    with pytest.raises(BadResponseError, match="'data'"):
        parse(FLINK_JOB, {"success": True, "data": None})
    # a job without a status object is unknown: the wait goes on
    status = parse(FLINK_JOB, {"data": {"jobId": "j", "status": "RUNNING"}}, "header-id")
    assert (status.state, status.raw_status, status.request_id) == (UNKNOWN, None, "header-id")


def test_flink_job_requests() -> None:
    ids = {"workspace_id": "a14bd5d90a", "namespace": "default-namespace", "job_id": "5af678c0"}
    assert FLINK_JOB.build_request(ids) == ApiRequest(
        method="GET",
        path="/api/v2/namespaces/default-namespace/jobs/5af678c0",
        query={},
        body=b"",
        content_type=None,
        headers={"workspace": "a14bd5d90a"},
    )
    # StopJob: the status call's header and path, the SDK's required stopStrategy in a JSON body
    assert FLINK_JOB.build_cancel_request(ids, "cn-hangzhou") == ApiRequest(
        method="POST",
        path="/api/v2/namespaces/default-namespace/jobs/5af678c0:stop",
        query={},
        body=b'{"stopStrategy":"NONE"}',
        content_type=JSON_CONTENT_TYPE,
        headers={"workspace": "a14bd5d90a"},
    )
    for missing in ("workspace_id", "namespace", "job_id"):
        with pytest.raises(ConfigurationError, match=missing):
            FLINK_JOB.build_request({k: v for k, v in ids.items() if k != missing})
    op = FLINK_JOB.start_operation("StartJobWithParams")
    assert op is not None
    assert (op.method, op.path, op.idempotency_param) == (
        "POST",
        "/api/v2/namespaces/{namespace}/jobs:start",
        None,
    )
    # the task's ids: the workspace header and the namespace the request named, the answer's jobId
    request = op.request_values(
        "/api/v2/namespaces/default-namespace/jobs:start",
        None,
        {"deploymentId": "d-1"},
        {"workspace": "a14bd5d90a"},
    )
    answer = {"success": True, "data": {"jobId": "5af678c0", "namespace": "other"}}
    assert ids_from_response(op.task_ids, answer, request) == (ids, [])


# --------------------------------------------------------------------------- Function Compute

#: A GetAsyncTask body made of the example values of the official SDKs' AsyncTask model (its
#: ``****`` elisions replaced by letters).
FC_ASYNC_TASK_SAMPLE = """{"alreadyRetriedTimes":3,"destinationStatus":"Failed","durationMs":1000,
   "endTime":1633449590000,"events":[{"eventDetail":"body","eventId":1,"status":"Failed",
   "timestamp":1647420449721}],"functionArn":"acs:fc:cn-shanghai:1234/functions/my-func",
   "instanceId":"D4-abcdefg9FD1-882707E","qualifier":"prod","requestId":"e026ae92-61e5-472f-b32d-1c9e3c4eabcd",
   "returnPayload":"result","startedTime":1633449590000,"status":"Failed",
   "taskErrorMessage":"UnhandledInvocationError","taskId":"e026ae92-61e5-472f-b32d-1c9e3c4eabcd",
   "taskPayload":"body"}"""


def test_fc_async_task_sample() -> None:
    status = parse(FC_ASYNC_TASK, json.loads(FC_ASYNC_TASK_SAMPLE), "header-id")
    assert status.service == "fc_async_task"
    assert (status.state, status.raw_status) == (FAILED, "Failed")
    assert (status.error_code, status.message) == (None, "UnhandledInvocationError")
    assert status.request_id == "header-id"  # the answer's own request id, not the invocation's
    assert status.result is None  # what a failed task returned is not its result
    assert status.raw["functionArn"] == "acs:fc:cn-shanghai:1234/functions/my-func"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Enqueued", RUNNING),
        ("Dequeued", RUNNING),
        ("Retrying", RUNNING),
        ("Stopping", RUNNING),
        ("Succeeded", SUCCEEDED),
        ("Failed", FAILED),
        ("Invalid", FAILED),
        ("Expired", FAILED),
        ("Stopped", CANCELLED),
        ("Suspended", UNKNOWN),  # named nowhere in the SDK or the API reference: the wait goes on
    ],
)
def test_fc_async_task_states(raw: str, expected: str) -> None:
    assert parse(FC_ASYNC_TASK, {"status": raw}).state == expected


def test_fc_async_task_result_and_message() -> None:
    done = parse(FC_ASYNC_TASK, {"status": "Succeeded", "returnPayload": '{"ok":1}', "taskErrorMessage": "x"})
    assert (done.result, done.message) == ('{"ok":1}', None)
    assert parse(FC_ASYNC_TASK, {"status": "Succeeded", "returnPayload": {"ok": 1}}).result is None
    assert parse(FC_ASYNC_TASK, {"status": "Running", "requestId": "inv-1"}).request_id == "inv-1"


def test_fc_async_task_requests() -> None:
    ids = {"function_name": "my-fn", "async_task_id": "airflow-1", "qualifier": "prod"}
    assert FC_ASYNC_TASK.build_request(ids) == ApiRequest(
        method="GET",
        path="/2023-03-30/functions/my-fn/async-tasks/airflow-1",
        query={"qualifier": "prod"},
        body=b"",
        content_type=None,
    )
    # StopAsyncTask: PUT with the qualifier query and no body, as the SDK sends it.
    assert FC_ASYNC_TASK.build_cancel_request(ids, "cn-hangzhou") == ApiRequest(
        method="PUT",
        path="/2023-03-30/functions/my-fn/async-tasks/airflow-1/stop",
        query={"qualifier": "prod"},
        body=b"",
        content_type=None,
    )
    assert FC_ASYNC_TASK.build_request({"function_name": "f", "async_task_id": "t"}).query == {}
    assert FC_ASYNC_TASK.cancel is not None
    assert FC_ASYNC_TASK.cancel.response_body == "none"
    op = FC_ASYNC_TASK.start_operation("InvokeFunction")
    assert op is not None
    assert (op.method, op.path, op.idempotency_param, op.idempotency_location, op.idempotency_format) == (
        "POST",
        "/2023-03-30/functions/{functionName}/invocations",
        "x-fc-async-task-id",
        "header",
        "airflow-{token}",
    )
    assert dict(op.headers) == {"x-fc-invocation-type": "Async"}
    assert (op.body_encoding, op.response_body, op.duplicate_status) == ("raw", "none", 409)
    # the ids come from the request: the path, the header, the query (the qualifier is optional)
    request = op.request_values(
        "/2023-03-30/functions/my-fn/invocations",
        {"qualifier": "prod"},
        None,
        {"X-Fc-Async-Task-Id": "airflow-1"},
    )
    assert services.tasks_from_response(op.task_ids, {}, request, {"qualifier"}) == ([ids], [])
    request.pop("qualifier")
    assert services.tasks_from_response(op.task_ids, {}, request, {"qualifier"}) == (
        [{"function_name": "my-fn", "async_task_id": "airflow-1"}],
        [],
    )
    # an optional id is only excused when absent from the request, never a required one
    assert services.tasks_from_response(op.task_ids, {}, {"functionName": "f"}, {"qualifier"}) == (
        [],
        ["async_task_id"],
    )


@pytest.mark.parametrize(
    ("region", "vpc", "host"),
    [
        ("cn-hangzhou", False, "adb.aliyuncs.com"),
        ("us-east-1", False, "adb.aliyuncs.com"),
        ("cn-shenzhen-finance-1", False, "adb.aliyuncs.com"),
        ("me-east-1", False, "adb.ap-northeast-1.aliyuncs.com"),
        ("cn-zhangjiakou", False, "adb.cn-zhangjiakou.aliyuncs.com"),
        ("eu-central-1", False, "adb.eu-central-1.aliyuncs.com"),
        ("cn-hangzhou-internal-test-1", False, "adb.cn-hangzhou-internal-test-1.aliyuncs.com"),
        ("cn-hangzhou", True, "adb-vpc.cn-hangzhou.aliyuncs.com"),
        ("me-east-1", True, "adb-vpc.me-east-1.aliyuncs.com"),
    ],
)
def test_adb_spark_hosts(region: str, vpc: bool, host: str) -> None:
    assert ADB_SPARK.host_for(region, {}, vpc=vpc) == host


@pytest.mark.parametrize(
    ("region", "vpc", "host"),
    [
        ("cn-hangzhou", False, "ververica.cn-hangzhou.aliyuncs.com"),
        ("cn-shanghai-finance-1", False, "ververica.cn-shanghai-finance-1.aliyuncs.com"),
        ("eu-central-1", False, "ververica.eu-central-1.aliyuncs.com"),
        ("cn-beijing", True, "ververica-vpc.cn-beijing.aliyuncs.com"),
    ],
)
def test_flink_job_hosts(region: str, vpc: bool, host: str) -> None:
    assert FLINK_JOB.host_for(region, {}, vpc=vpc) == host


@pytest.mark.parametrize(
    ("region", "vpc", "host"),
    [
        ("cn-hangzhou", False, "1234567890123456.cn-hangzhou.fc.aliyuncs.com"),
        ("ap-southeast-1", False, "1234567890123456.ap-southeast-1.fc.aliyuncs.com"),
        ("cn-shanghai", True, "1234567890123456.cn-shanghai-internal.fc.aliyuncs.com"),
    ],
)
def test_fc_async_task_hosts(region: str, vpc: bool, host: str) -> None:
    assert FC_ASYNC_TASK.host_for(region, {"account_id": "1234567890123456"}, vpc=vpc) == host


def test_fc_async_task_host_needs_the_account() -> None:
    with pytest.raises(ConfigurationError, match="fc_account_id"):
        FC_ASYNC_TASK.host_for("cn-hangzhou", {}, vpc=False)
    with pytest.raises(ConfigurationError, match="host name"):
        FC_ASYNC_TASK.host_for("cn-hangzhou", {"account_id": "12.34"}, vpc=False)
    assert FC_ASYNC_TASK.with_defaults({}, {"fc_account_id": "42"}) == {"account_id": "42"}


#: Attributes of Airflow's operators and triggers that a sensor's or a trigger's id attribute
#: would overwrite (the sensors store their ids, and the trigger its flat ids, under the ids'
#: names): ``task_id`` above all.
_AIRFLOW_ATTRIBUTES = frozenset(
    {"task_id", "dag_id", "run_id", "map_index", "owner", "queue", "pool", "params", "timeout", "mode"}
)


def test_no_id_is_named_as_an_airflow_attribute() -> None:
    from airflow.sdk import BaseSensorOperator
    from airflow.triggers.base import BaseTrigger

    reserved = _AIRFLOW_ATTRIBUTES | {n for n in dir(BaseSensorOperator) if not n.startswith("_")}
    reserved |= {n for n in dir(BaseTrigger) if not n.startswith("_")}
    for spec in SERVICES.values():
        assert not set(spec.id_names) & reserved, spec.name


def test_raw_keeps_every_json_value_and_drops_serde_markers_in_any_mapping() -> None:
    """``raw`` takes a fast path for what ``json.loads`` gives; other mappings and lists are
    still walked, and ``__`` keys dropped at every level."""
    import types

    from airflow_aliyun_tasks.services._parse import raw

    body = {"a": 1, "b": 1.5, "c": True, "d": None, "e": "x", "f": [1, {"__id__": 1, "g": [None]}]}
    assert raw(body) == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "x", "f": [1, {"g": [None]}]}
    assert raw(body) is not body  # a copy: the status does not share the decoder's objects
    proxy = types.MappingProxyType({"k": types.MappingProxyType({"__classname__": "x", "v": 2})})
    assert raw(proxy) == {"k": {"v": 2}}
    assert raw([{"__version__": 1}]) == [{}]
    assert raw(7) == 7
    assert raw("__x") == "__x"
