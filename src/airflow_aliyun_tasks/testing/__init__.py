"""A local Alibaba Cloud for tests: DLF, DataWorks (jobs and workflow instances), MaxCompute MMA, PDS,
EMR Serverless Spark, PAI DLC, AnalyticDB Spark, Realtime Compute for Apache Flink, Function Compute
asynchronous tasks and STS.

The emulator verifies signatures as the real gateways do, serves the status APIs of the async
tasks and job runs (plus operations that start and cancel them, and STS), plays scripted task
lifecycles and injects faults. Use it to test your own DAGs, sensors and hooks without an Alibaba
Cloud account. It listens on loopback only and never talks to the network. It needs nothing beyond what Airflow
already installs (Starlette and uvicorn).

Python API
==========

.. code-block:: python

    from airflow_aliyun_tasks.testing import Emulator, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

    with Emulator() as emu:                      # start() on enter, stop() on exit
        emu.add_dataworks_job("job-1", ["Running", "Running", "Success"])
        emu.url        # "http://127.0.0.1:<port>"; emu.port, emu.endpoint ("127.0.0.1:<port>")
        ...            # point your connection (or an SDK Config(endpoint=emu.endpoint, protocol="http")) here

``Emulator(access_keys=None, bearer_tokens=(), account_id="1234567890123456", max_skew_seconds=900,
sts_ttl_seconds=3600, clock_offset=0.0)``

- ``access_keys``: AccessKeyId -> secret. Default ``{DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}``
  (``"LTAI5tEmulatorKeyId00"`` / ``"EmulatorSecret0000000000000000"``).
- ``bearer_tokens``: PDS access tokens accepted as ``Authorization: Bearer <token>``.
- ``max_skew_seconds``: requests whose ``x-acs-date`` / ``Timestamp`` / PDS ``date`` is farther than
  this from the emulator's clock are rejected.
- ``sts_ttl_seconds``: lifetime cap of STS keys minted by AssumeRole (set it to 2 to test expiry).
- ``clock_offset``: seconds added to the emulator's idea of "now"; settable any time
  (``emu.clock_offset = 1200``) to emulate a client whose clock is off. Every response carries a
  ``Date`` header with the emulator's time.

Lifecycle: ``emu.start(host="127.0.0.1", port=0) -> url`` (uvicorn in a daemon thread; returns once
the port accepts connections; non-loopback hosts are refused), ``emu.stop()``, ``emu.app`` (the
Starlette app, e.g. for ``httpx.ASGITransport``; the ``drop`` fault then raises instead).

Scripted lifecycles: each status poll of a task returns the next raw status; the last one sticks.

- ``emu.add_dlf_task(task_id, statuses=("Running", "Success"), *, catalog_id=None, message="successful")``
- ``emu.add_dataworks_job(job_id, statuses=("Running", "Success"), *, error=None, job_type="Create",
  create_time_as_string=False)`` (``Completed`` is the string ``"True"``/``"False"``; ``CreateTime`` a
  number, or a string with ``create_time_as_string``; ``Error`` set on ``Fail``)
- ``emu.add_mma_task(source_id, async_task_id, statuses=("DOING", "DONE"), *, progress=None, error_msg=None)``
  (``progress`` per step 0..100; ``running`` is true while the status is INIT/DOING/RUNNING/PENDING;
  ``result``/``errorMsg`` are the string ``"null"`` when absent; times end with ``"\\n"``)
- ``emu.add_pds_task(async_task_id, states=("Running", "Succeed"), *, domain_id=None, total_process=None,
  consumed_process=None, failed_process=0, skipped_process=0, error_code=None, error_message=None)``
- ``emu.add_emr_serverless_spark_job_run(workspace_id, job_run_id, states=("Running", "Success"), *,
  state_change_reason_code=None, state_change_reason_message=None, fields=None)``
  (``stateChangeReason`` once the run has ended; a ``Failed`` run without a reason gets a generic
  one; ``fields`` adds to or overrides the ``jobRun`` object, camelCase keys)
- ``emu.add_dataworks_workflow_instance(workflow_instance_id, statuses=("Running", "Success"), *,
  name=None, project_id=None, instance_type=None, owner=None, env_type=None, workflow_id=None,
  biz_date=None, workflow_parameters=None, unified_id=None)`` (an integer id; ``StartedTime`` once it
  left ``NotRun``/``WaitTime``, ``FinishedTime`` once it ended)
- ``emu.add_pai_dlc_job(job_id, statuses=("Running", "Succeeded"), *, reason_code=None,
  reason_message=None, fields=None)`` (``ReasonCode``/``ReasonMessage`` once the job has ended,
  a default reason per state otherwise; ``fields`` adds to or overrides the job, PascalCase keys)
- ``emu.add_adb_spark_app(app_id, statuses=("RUNNING", "COMPLETED"), *, message=None,
  db_cluster_id=None, app_name=None, app_type=None, resource_group=None)`` (``Data.Message`` on
  ``FAILED``/``FATAL``, a default one without ``message``; a request whose ``DBClusterId`` is not
  the application's cluster does not find it)
- ``emu.add_flink_job(workspace_id, namespace, job_id, statuses=("RUNNING", "FINISHED"), *,
  execution_mode="BATCH", deployment_id=None, deployment_name=None, failure_reason=None,
  failure_message=None, fields=None)`` (``status.failure`` once ``FAILED``, a default reason
  otherwise; ``execution_mode`` ``BATCH`` or ``STREAM``, reported and otherwise ignored: a script
  says when a job ends; ``fields`` adds to or overrides the job, camelCase keys)
- ``emu.add_fc_async_task(function_name, async_task_id, statuses=("Running", "Succeeded"), *,
  qualifier=None, error_message=None, return_payload=None, payload=None, fields=None)``
  (``taskErrorMessage`` once the task has ended badly, ``UnhandledInvocationError`` for a failed
  one without a message; ``returnPayload`` once it succeeded; ``taskPayload`` the event;
  ``qualifier`` is reported and does not name the task; ``fields`` adds to or overrides the task,
  camelCase keys)
- ``emu.add_task(service, **spec)``: the same, by service name (any of :data:`ALL_SERVICES`);
  ``statuses`` is accepted where the method says ``states``.
- ``emu.set_dataworks_create_result(statuses, failure_message=None)``: what the next DataWorks
  ``CreateWorkflowInstances`` operations report, one status per poll of
  ``GetCreateWorkflowInstancesResult`` (default ``Creating``, then ``Created``).
- ``emu.start_lifecycles[service] = (...)`` or ``emu.set_start_lifecycle(service, statuses)``:
  statuses of the tasks created by the start operations (:data:`DEFAULT_START_LIFECYCLES`).

:data:`START_OPERATIONS` and :data:`CANCEL_OPERATIONS` list the start and cancel operations
served, as ``(service, action)``: a subset of those the service registry knows (the docs page
of the operator says which).

Service names: :data:`SERVICES` is the four async-task services (``dlf``, ``dataworks``, ``mma``,
``pds``); :data:`ALL_SERVICES` adds ``emr_serverless_spark``, ``dataworks_workflow``,
``pai_dlc``, ``adb_spark``, ``flink_job`` and ``fc_async_task``. STS is ``"sts"``.

Faults: ``emu.inject_fault(kind, count=1, *, service=None, task=None)`` makes the next ``count``
requests to an operation (status, start or cancel) of ``service``, or of any service but STS,
misbehave; with ``task``, only the status polls of the task with that id (DLF ``TaskId``, DataWorks
``JobId``, MMA ``asyncTaskId``, PDS ``async_task_id``, EMR Serverless Spark ``jobRunId``, DataWorks
workflow instance ``Id``, PAI DLC ``JobId``, AnalyticDB Spark ``AppId``, Flink ``jobId``,
Function Compute ``taskId``).
``emu.set_fault_rate(rate, kinds=None, *, service=None, seed=None, exempt_tasks=())`` faults every
further matching request with probability ``rate`` (kind drawn uniformly from ``kinds``, default
:data:`FAULT_KINDS`), after the queued faults; polls of ``exempt_tasks`` are never faulted at
random; ``rate=0`` or ``reset()`` turns it off. STS and the control API are never faulted. Kinds
(:data:`ALL_FAULT_KINDS`; the first ten are :data:`FAULT_KINDS`):

- ``"503"``: HTTP 503 ``ServiceUnavailable`` (error JSON in the service's shape)
- ``"500"``: HTTP 500 ``InternalError``
- ``"throttling"``: HTTP 400 ``Throttling.User``, no retry-after
- ``"throttling_retry_after"``: the same plus header ``x-acs-retry-after: 200`` (milliseconds)
- ``"pds_gateway"``: HTTP 504, empty body, headers ``x-ca-error-code: D504TO``, ``x-ca-error-message``,
  ``x-ca-request-id``
- ``"malformed_json"``: HTTP 200 whose body is not JSON
- ``"truncated_json"``: HTTP 200, the normal body cut in half (the task's lifecycle does not move)
- ``"slow"``: waits ``emu.slow_seconds`` (default 3.0), then answers normally
- ``"drop"``: closes the TCP connection without any response
- ``"html"``: HTTP 502 ``text/html`` error page
- ``"drop_after_accept"``: serves the request (a start creates its task, a poll moves the lifecycle
  on), then closes the connection without the answer: the lost response of a start

Observation:

- ``emu.request_count(service=None, **ids)``: requests that reached a service's API, faulted and
  rejected ones included; ``None`` = every service but STS; ``"sts"`` counts STS; with ids, the
  status polls of that one task, e.g. ``request_count("dataworks", job_id="j1")``.
- ``emu.poll_count(service, **ids)``: polls answered normally, e.g. ``poll_count("mma", source_id=1,
  async_task_id=2)``.
- ``emu.start_count(service=None, action=None, *, accepted=False)``: requests to start operations,
  faulted and rejected ones included; with ``accepted=True``, only those the operation took (a task
  started, or, for a client token already seen, the earlier task returned), whether or not the
  client got the answer (``drop_after_accept``). A DLF error inside an HTTP 200 is not accepted.
- ``emu.cancel_count(service=None, *, accepted=False, **ids)``: the same for cancel operations, by
  task with ids, e.g. ``cancel_count("emr_serverless_spark", workspace_id="w", job_run_id="jr")``.
- ``emu.fault_counts`` (faults served, by kind), ``emu.tasks(service=None)``, ``emu.stats()``.

Credentials: ``emu.revoke_key(access_key_id)`` (then ``InvalidAccessKeyId.NotFound``, HTTP 404),
``emu.add_access_key(id, secret)``, ``emu.add_bearer_token(token)``,
``emu.issue_sts_credentials(role_arn=None, role_session_name=..., duration_seconds=None)``.
``emu.reset()`` forgets tasks, client tokens, faults, counters, nonces, minted STS keys and
revocations, and restores the constructor's clock offset and the default start lifecycles.

What is served
==============

One port serves everything, routed like the POP gateway (by ``x-acs-action``/``x-acs-version``, or
the RPC ``Action``/``Version`` parameters) and, for PDS, by path:

- DLF ``GetAsyncTaskStatus`` (GET ``/api/metastore/catalogs/tasks``, ``TaskId``, ``CatalogId``). An
  unknown task gives HTTP 200 with ``{"Success": false, "Code": "NoSuchObject", ...}``, DLF's
  body-level error style. Start operations: ``DeleteDatabase`` with ``Async=true`` returns ``TaskId``;
  ``BatchUpdateTables``, ``DeleteCatalog``, ``RenameTable`` and ``UpdateTable`` always do.
- DataWorks ``GetJobStatus`` (RPC, GET or form POST ``/``, ``JobId``). Unknown job: HTTP 404
  ``InvalidJob.NotFound``. Start operation: ``ImportWorkflowDefinition`` returns ``AsyncJob.Id``.
- MaxCompute ``GetMmsAsyncTask`` (GET ``/api/v1/mms/datasources/{sourceId}/asyncTasks/{asyncTaskId}``).
  Product errors are camelCase ``{"requestId", "code", "message"}`` (unknown task: 404 ``NotFound``).
  Start operations: ``CreateMmsJob`` (POST ``/api/v1/mms/datasources/{sourceId}/jobs``) and
  ``UpdateMmsDataSource`` (PUT ``/api/v1/mms/datasources/{sourceId}``) return ``data.asyncTaskId``.
- PDS ``GetAsyncTask`` (POST ``/v2/async_task/get``, ``{"async_task_id": ...}``), signed
  ``Authorization: acs AK:signature`` or ``Bearer <token>``. Errors are ``{"Code", "Message", "RequestId"}``
  with header ``x-ca-request-id``; unknown task: 404 ``NotFound.AsyncTask``. Start operations:
  ``ArchiveFiles`` (POST ``/v2/file/archive_files``, alias ``/v2/file/archive``) returns HTTP 202
  ``{"async_task_id": ...}`` (the task's status has the archive's ``url`` once it succeeded);
  ``AuditLogExport``, ``ClearRecyclebin``, ``CopyFile``, ``DeleteFile``, ``MoveFile``,
  ``RestoreFile`` and ``TrashFile`` too, always as for a folder. When a task has a ``domain_id``
  and the request's Host is a name (``<domain>.api.aliyunpds.com``), the first label must match.
- EMR Serverless Spark (``2023-08-08``, ROA; every operation may carry ``regionId`` in the query):
  ``GetJobRun`` (GET ``/api/v1/workspaces/{workspaceId}/jobRuns/{jobRunId}``) answers ``requestId``
  and the ``jobRun`` object (``jobRunId``, ``workspaceId``, ``name``, ``state``,
  ``stateChangeReason {code, message}``, ``submitTime`` and ``endTime`` in epoch ms, ``codeType``,
  ``webUI``, ``resourceQueueId``, ``log``, ``jobDriver``...). States ``Submitted``, ``Pending``,
  ``Running`` and ``Cancelling`` (and ``Queued``, ``Scheduled``, ``Starting``, ``Stopping``) do not
  end a run; any other state does (``endTime`` is then set). Unknown run: 404
  ``InvalidJobRun.NotFound``. Start operation: ``StartJobRun`` (POST ``.../jobRuns``, JSON body)
  answers ``{"requestId", "jobRunId"}``; a ``clientToken`` already seen in the workspace returns
  the run it started and starts nothing. Cancel operation: ``CancelJobRun`` (DELETE
  ``.../jobRuns/{jobRunId}``) answers ``{"requestId", "jobRunId"}``; a run that has not ended
  reports ``Cancelling`` on the next poll, then ``Cancelled``; an ended run gives 400
  ``InvalidJobRunState``. Errors have the POP shape.
- DataWorks workflow instances (``2024-05-18``, RPC, form bodies): ``GetWorkflowInstance`` (GET,
  ``Id`` an integer) answers ``RequestId`` and the ``WorkflowInstance`` object (``Id``, ``Status``,
  ``Type``, ``Name``, ``ProjectId``, ``EnvType``, ``WorkflowId``, ``BizDate``, ``StartedTime``,
  ``FinishedTime``...); ``Success`` and ``Failure`` end an instance. Unknown instance: 404
  ``WorkflowInstance.NotFound``. Start operations: ``ExecuteAdhocWorkflowInstance`` (``Tasks`` a
  JSON array) answers ``WorkflowInstanceId``; ``CreateWorkflowInstances`` (``Periods`` a JSON object)
  answers ``OperationId``, and ``GetCreateWorkflowInstancesResult`` reports ``Result.Status``
  (``Creating``, then ``Created`` with ``WorkflowInstanceIds``, one per business date, or
  ``CreateFailure`` with ``FailureMessage``). Cancel operation: ``StopWorkflowInstances`` (``Ids`` a
  JSON array) answers HTTP 200 with ``SuccessInfo.<id>: {Success, Message}``; a stopped instance
  then reports ``Failure``.
- PAI DLC (``2020-12-03``, ROA): ``GetJob`` (GET ``/api/v1/jobs/{JobId}``; ``NeedDetail`` is
  accepted and ignored) answers the job at the top level (``JobId``, ``DisplayName``, ``JobType``,
  ``WorkspaceId``, ``Status``, ``ReasonCode``, ``ReasonMessage``, ``RequestId``, ``Gmt*Time`` in ISO
  8601 UTC, ``Duration``, ``JobSpecs``...). ``Creating``, ``Queuing``, ``Bidding``, ``EnvPreparing``,
  ``SanityChecking``, ``Running``, ``Restarting`` and ``Stopping`` do not end a job; any other state
  does (``GmtFinishTime``). Unknown job: 404 ``InvalidJob.NotFound``. Start operation:
  ``CreateJob`` (POST ``/api/v1/jobs``, JSON body with ``DisplayName``, ``JobType``, ``JobSpecs``
  and ``UserCommand``) answers ``{"JobId", "RequestId"}``; no client token. Cancel operation:
  ``StopJob`` (POST ``/api/v1/jobs/{JobId}/stop``, no body: one with a body gets 400
  ``InvalidParameter``) answers ``{"JobId", "RequestId"}``; a running job reports ``Stopping``,
  then ``Stopped``; a ``SucceededReserving``/``FailedReserving`` job reports ``Succeeded``/``Failed``
  next; an ended job gives 400 ``InvalidJobStatus``.
- AnalyticDB for MySQL Spark (``2021-12-01``, RPC, ``POST /`` with form bodies):
  ``GetSparkAppState`` (``AppId`` in the form; ``DBClusterId`` in the query, optional) answers
  ``RequestId`` and ``Data`` (``AppId``, ``AppName``, ``DBClusterId``, ``State``, ``Message``).
  ``SUBMITTED``, ``STARTING``, ``RUNNING``, ``FAILING``, ``SUCCEEDING``, ``KILLING`` and ``UNKNOWN``
  do not end an application; any other state does. Unknown application: 404
  ``InvalidAppId.NotFound``. Start operation: ``SubmitSparkApp`` (``DBClusterId``,
  ``ResourceGroupName`` and ``Data``, a JSON object as text, required; ``AppType`` ``BATCH``,
  ``SQL`` or ``STREAMING``) answers ``Data.AppId``; no client token. Cancel operation:
  ``KillSparkApp`` (``AppId`` in the form) answers ``Data`` with ``State: KILLING``; a running
  application reports ``KILLING``, then ``KILLED``; an ended one gives 400 ``InvalidAppState``.
- Realtime Compute for Apache Flink (``2022-07-18``, ROA; product ``ververica``): every operation
  takes the workspace in a ``workspace`` header and the namespace in the path (the colon of
  ``jobs:start`` and ``:stop`` is accepted encoded, ``%3A``, as the SDK sends it, or not).
  ``GetJob`` (GET ``/api/v2/namespaces/{namespace}/jobs/{jobId}``) answers the envelope
  ``{"requestId", "success": true, "httpCode": 200, "errorCode": "", "errorMessage": "", "data"}``
  with the job as ``data`` (``jobId``, ``workspace``, ``namespace``, ``deploymentId``,
  ``deploymentName``, ``executionMode``, ``startTime``/``endTime`` in epoch milliseconds,
  ``status.currentJobStatus``, ``status.failure`` once ``FAILED``, ``status.running`` while
  ``RUNNING``). ``STARTING``, ``RUNNING`` and ``CANCELLING`` do not end a job; any other state does.
  The service's errors come inside HTTP 200 answers (``success: false``, ``errorCode``,
  ``errorMessage``): unknown job ``Job.NotFound``, no ``workspace`` header
  ``InvalidParameter.Workspace``. Start operation: ``StartJobWithParams`` (POST
  ``.../jobs:start``, JSON body with ``deploymentId``; without it ``InvalidParameter``) answers
  the new job as ``data`` (``data.jobId``, a UUID); no client token. Cancel operation: ``StopJob``
  (POST ``.../jobs/{jobId}:stop``, JSON body with ``stopStrategy`` ``NONE``,
  ``STOP_WITH_SAVEPOINT`` or ``STOP_WITH_DRAIN``; else ``InvalidParameter``) answers the job; a
  running job reports ``CANCELLING``, then ``CANCELLED``; an ended job gives
  ``Job.StatusNotAllowed``.
- Function Compute 3.0 asynchronous tasks (``2023-03-30``, ROA): ``GetAsyncTask`` (GET
  ``/2023-03-30/functions/{functionName}/async-tasks/{taskId}``, ``qualifier`` in the query
  accepted) answers the task at the top level (``taskId``, ``status``, ``functionArn``,
  ``qualifier``, ``requestId``, ``startedTime``/``endTime`` in epoch ms, ``durationMs``,
  ``alreadyRetriedTimes``, ``destinationStatus``, ``events``, ``taskErrorMessage``,
  ``taskPayload``, ``returnPayload``). ``Enqueued``, ``Dequeued``, ``Running``, ``Retrying`` and
  ``Stopping`` do not end a task; any other state does. Unknown task: 404 ``AsyncTaskNotFound``.
  Start operation: ``InvokeFunction`` (POST ``.../functions/{functionName}/invocations``, the event
  as the raw body) with ``x-fc-invocation-type: Async`` answers 202 with no body and creates the
  task named by ``x-fc-async-task-id`` (one is made when absent; a malformed one gets 400
  ``InvalidArgument``); a task id the function already has gets 409 ``AsyncTaskAlreadyExists`` and
  invokes nothing; a synchronous invocation answers 200 with the event echoed. Cancel operation:
  ``StopAsyncTask`` (PUT ``.../async-tasks/{taskId}/stop``, no body) answers 200 with no body; a
  running task reports ``Stopping``, then ``Stopped``; an ended task gives 400 ``InvalidArgument``.
  Errors are ``{"Code", "Message", "RequestId"}`` with header ``x-fc-request-id`` (also on every
  answer).
- STS (``2015-04-01``, RPC): ``GetCallerIdentity``, ``AssumeRole`` (keys live
  ``min(DurationSeconds, sts_ttl_seconds)``; then ``InvalidSecurityToken.Expired``) and the unsigned
  ``AssumeRoleWithOIDC``. Requests signed with an STS key must carry its token
  (``MissingSecurityToken``, ``InvalidSecurityToken.MismatchWithAccessKey``).
- ``GET /_emulator/credentials``: fresh STS keys in the shape the ``credentials_uri`` provider of
  ``alibabacloud-credentials`` expects (``Code: "Success"``, ``AccessKeyId``, ``AccessKeySecret``,
  ``SecurityToken``, ``Expiration``).

Signatures are verified as Alibaba Cloud does: ACS3-HMAC-SHA256 (``host`` and every ``x-acs-*``
header must be signed, else ``IncompleteSignature``; the payload hash is recomputed from the body),
the legacy RPC V2 and ROA ``acs`` HMAC-SHA1 signatures, and PDS's ``acs`` HMAC-SHA1. A mismatch gives
``SignatureDoesNotMatch`` with ``"... server string to sign is:<string to sign>"`` (HTTP 400; 403 for
PDS); an unknown or revoked key 404 ``InvalidAccessKeyId.NotFound``; a date too far off 400
``InvalidTimeStamp.Expired`` naming the server time (PDS: 403 ``RequestTimeTooSkewed``); a reused
``x-acs-signature-nonce`` (within 15 min) 400 ``SignatureNonceUsed``; no credentials 400
``MissingAuthorization`` (PDS: 401 ``AccessTokenInvalid``). POP errors have the real shape
``{"RequestId", "HostId", "Code", "Message", "Recommend"}`` and every POP response carries
``x-acs-request-id``.

Control API
===========

Unsigned JSON endpoints on the same port, to script an emulator running in another process:

- ``POST /_emulator/tasks``:
  ``{"service": "dataworks", "job_id": "j1", "statuses": ["Running", "Success"], ...}`` (the ids and options of the ``add_*`` method; a list of such objects is accepted too)
- ``POST /_emulator/faults``: ``{"kind": "503", "count": 2, "service": "pds", "task": "t1"}`` (or a list)
- ``POST /_emulator/fault_rate``: ``{"rate": 0.2, "kinds": [...], "service": null, "seed": 1,
  "exempt_tasks": [...]}``; ``POST /_emulator/slow_seconds``: ``{"seconds": 2.0}``
- ``GET /_emulator/stats``: request counts per service and per polled task (``requests_by_task``),
  start operations (``starts``: service, action, requests, accepted) and cancels by task
  (``cancels``), tasks with their polls, faults served and pending, the fault rate
- ``POST /_emulator/dataworks_create_result``: ``{"statuses": ["Creating", "CreateFailure"],
  "failure_message": "..."}``
- ``POST /_emulator/reset``, ``POST /_emulator/revoke`` ``{"access_key_id": ...}``,
  ``POST /_emulator/clock`` ``{"offset": 1200}``,
  ``POST /_emulator/start_lifecycle`` ``{"service": "pds", "statuses": ["Running", "Failed"]}``
- ``GET /_emulator/tasks``, ``GET /_emulator/health``, ``GET /_emulator/credentials``

Command line
============

.. code-block:: console

    python -m airflow_aliyun_tasks.testing serve --port 8765 [--host 127.0.0.1]
        [--access-key-id X --access-key-secret Y] [--bearer-token T] [--tasks FILE.json]
        [--account-id N] [--sts-ttl-seconds S] [--max-skew-seconds S] [--clock-offset S]
        [--slow-seconds S]

prints ``Alibaba Cloud emulator listening on http://127.0.0.1:8765`` and serves until SIGINT or
SIGTERM. Non-loopback hosts are refused. ``--tasks`` takes a JSON list of task objects (as for
``POST /_emulator/tasks``), or ``{"tasks": [...], "faults": [...]}``.

Where the emulator had to guess
===============================

Public documentation does not show these; the emulator picks plausible values (documented
here so that tests do not mistake them for facts): DataWorks unknown job (404
``InvalidJob.NotFound``), MMA unknown task (404 camelCase ``NotFound``), MMA times in UTC+8,
``endTime`` the string ``"null"`` while running, PDS signature mismatch status (403), PDS date skew
(403 ``RequestTimeTooSkewed``), PDS throttling (400 ``Throttling.User``), ``ArchiveFiles`` answering
202, missing POP credentials (400 ``MissingAuthorization``), the HTTP status of
``SignatureNonceUsed`` and of the ``InvalidSecurityToken.*`` codes (400), the STS key and token
formats, and EMR Serverless Spark's product errors (404 ``InvalidJobRun.NotFound``, 400
``InvalidJobRunState`` for cancelling an ended run, 400 ``InvalidParameter``; the POP error shape),
DataWorks workflow instances' (404 ``WorkflowInstance.NotFound``, 404 ``Operation.NotFound``, the
result of stopping an ended instance, one instance per business date of a backfill),
and PAI DLC's (404 ``InvalidJob.NotFound``, 400 ``InvalidJobStatus`` for stopping an ended job, 400
``InvalidParameter``, the default ``ReasonCode``/``ReasonMessage`` of each state, what ``StopJob``
does to a job that keeps its nodes), and AnalyticDB Spark's (404 ``InvalidAppId.NotFound``, 400
``InvalidAppState`` for killing an ended application, 400 ``MissingParameter`` and
``InvalidParameter``, the application id format, the default ``Message`` of a failure),
Flink's (the error codes and messages inside the HTTP 200 envelope: ``Job.NotFound``,
``InvalidParameter.Workspace``, ``InvalidParameter``, ``Job.StatusNotAllowed``; the default failure
reason; the epoch-millisecond times; gateway errors and faults in the POP shape), and Function
Compute's (the error codes: the 409 of a duplicate task id is documented,
``AsyncTaskAlreadyExists`` is not; 404 ``AsyncTaskNotFound``, 400 ``InvalidArgument``; the error
body's shape; what ``StopAsyncTask`` answers for an ended task).
Nonces are remembered per gateway (POP, PDS) and access key.

Start operations, from the public API reference:

- DataWorks ImportWorkflowDefinition:
  https://www.alibabacloud.com/help/en/dataworks/developer-reference/api-dataworks-public-2024-05-18-importworkflowdefinition
- PDS ArchiveFiles: https://www.alibabacloud.com/help/en/pds/drive-and-photo-service-dev/developer-reference/api-pds-2022-03-01-archivefiles
- MaxCompute CreateMmsJob: https://www.alibabacloud.com/help/en/maxcompute/user-guide/api-maxcompute-2022-01-04-createmmsjob
- DLF DeleteDatabase (``Async=true`` returns ``TaskId``):
  https://www.alibabacloud.com/help/en/dlf/dlf-1-0/developer-reference/api-datalake-2020-07-10-deletedatabase
- EMR Serverless Spark StartJobRun and CancelJobRun: the request and response models of the
  official SDK ``alibabacloud-emr-serverless-spark20230808``; GetJobRun:
  https://www.alibabacloud.com/help/en/emr/emr-serverless-spark/developer-reference/api-emr-serverless-spark-2023-08-08-getjobrun
- DataWorks GetWorkflowInstance, ExecuteAdhocWorkflowInstance, CreateWorkflowInstances,
  GetCreateWorkflowInstancesResult and StopWorkflowInstances: the request and response models of
  the official SDK ``alibabacloud-dataworks-public20240518``
- PAI DLC CreateJob and StopJob: the request and response models of the official SDK
  ``alibabacloud-pai-dlc20201203``; GetJob:
  https://help.aliyun.com/zh/pai/user-guide/api-pai-dlc-2020-12-03-getjob
- AnalyticDB for MySQL GetSparkAppState, SubmitSparkApp and KillSparkApp: the request and
  response models of the official SDK ``alibabacloud-adb20211201``
- Flink GetJob, StartJobWithParams and StopJob: the request and response models of the official SDK
  ``alibabacloud-ververica20220718``; GetJob:
  https://www.alibabacloud.com/help/en/flink/realtime-flink/developer-reference/api-ververica-2022-07-18-getjob
- Function Compute InvokeFunction, GetAsyncTask and StopAsyncTask: the request and response
  models of the official SDK ``alibabacloud-fc20230330``; the 409 of a duplicate task id:
  https://www.alibabacloud.com/help/en/fc/task-deduplication

Source layout
=============

``_core`` (the :class:`Emulator`: lifecycle, routing, authentication, counters), ``_base`` (replies,
scripted tasks, the ``Service``/``Op`` tables), one module per service (``_dlf``, ``_dataworks``,
``_mma``, ``_pds``, ``_emr_serverless_spark``, ``_dataworks_workflow``, ``_pai_dlc``, ``_adb_spark``,
``_flink_job``, ``_fc_async_task``, ``_sts``: its
operation table, handlers, response
bodies and ``add_*`` method), ``_faults``, ``_control`` (the control API) and ``_auth`` (signature
verification, with a canonicalization of its own). A new service is one module and one line in
``_core``.
"""

from __future__ import annotations

from airflow_aliyun_tasks.testing._core import (
    ALL_SERVICES,
    CANCEL_OPERATIONS,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_START_LIFECYCLES,
    SERVICES,
    START_OPERATIONS,
    Emulator,
)
from airflow_aliyun_tasks.testing._faults import ALL_FAULT_KINDS, FAULT_KINDS

__all__ = [
    "ALL_FAULT_KINDS",
    "ALL_SERVICES",
    "CANCEL_OPERATIONS",
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "DEFAULT_START_LIFECYCLES",
    "FAULT_KINDS",
    "SERVICES",
    "START_OPERATIONS",
    "Emulator",
]
