"""The one normalized result every layer speaks: :class:`TaskStatus`.

States are plain strings on purpose: they cross the triggerer/worker boundary through
Airflow's serializer, which rejects enums.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CANCELLED",
    "FAILED",
    "OUTCOME_CANCELLED",
    "OUTCOME_FAILED",
    "OUTCOME_SUCCESS",
    "PARTIALLY_SUCCEEDED",
    "RUNNING",
    "STATES",
    "SUCCEEDED",
    "TERMINAL_STATES",
    "UNKNOWN",
    "TaskStatus",
    "describe",
    "describe_ids",
    "lowered",
    "outcome_for",
    "outcome_of",
]

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
PARTIALLY_SUCCEEDED = "partially_succeeded"
UNKNOWN = "unknown"

STATES: frozenset[str] = frozenset({RUNNING, SUCCEEDED, FAILED, CANCELLED, PARTIALLY_SUCCEEDED, UNKNOWN})
TERMINAL_STATES: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED, PARTIALLY_SUCCEEDED})

_FIELDS = (
    "service",
    "ids",
    "state",
    "raw_status",
    "progress",
    "message",
    "error_code",
    "request_id",
    "result",
    "raw",
)


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """Status of one Alibaba Cloud async task, normalized across services.

    :param service: the service's name in :data:`~airflow_aliyun_tasks.services.SERVICES`.
    :param ids: the ids that identify the task, as strings (e.g. ``{"job_id": "..."}``).
    :param state: one of :data:`STATES`.
    :param raw_status: the service's own status value, verbatim (``None`` if absent).
    :param progress: 0..1 where the API reports progress, else ``None``.
    :param message: the service's human message or error message, if any.
    :param error_code: the service's error code, if any.
    :param request_id: the request id of the response that produced this status.
    :param result: what the task produced, where the API reports it in the status response
        (``None`` otherwise): PDS's ``url`` (the download address of an ``ArchiveFiles``
        archive), MaxCompute MMA's ``result``. A string; also inside ``raw``.
    :param raw: the response body (JSON object) as received.
    """

    service: str
    ids: dict[str, str]
    state: str
    raw_status: str | None = None
    progress: float | None = None
    message: str | None = None
    error_code: str | None = None
    request_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    result: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"TaskStatus.state must be one of {sorted(STATES)}, got {self.state!r}")
        if self.progress is not None and not 0.0 <= self.progress <= 1.0:
            raise ValueError(f"TaskStatus.progress must be within 0..1, got {self.progress!r}")

    @property
    def is_terminal(self) -> bool:
        """True when the task will not change state any more."""
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """A plain-JSON dict; :meth:`from_dict` turns it back into an equal ``TaskStatus``."""
        d: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        d["ids"] = dict(self.ids)
        d["is_terminal"] = self.is_terminal
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskStatus:
        """Rebuild a status from :meth:`to_dict` output; rejects anything else."""
        if not isinstance(data, dict):
            raise TypeError(f"TaskStatus.from_dict expects a dict, got {type(data).__name__}")
        missing = [name for name in ("service", "ids", "state") if name not in data]
        if missing:
            raise ValueError(f"TaskStatus dict is missing {', '.join(missing)}")
        unknown = set(data) - set(_FIELDS) - {"is_terminal"}
        if unknown:
            raise ValueError(f"TaskStatus dict has unknown keys: {', '.join(sorted(unknown))}")
        kwargs = {name: data[name] for name in _FIELDS if name in data}
        kwargs["ids"] = dict(kwargs["ids"])
        if kwargs.get("raw") is None:
            kwargs["raw"] = {}
        return cls(**kwargs)


# --------------------------------------------------------------------------- outcomes

#: What a wait ends with, as the trigger's event ``status`` and the sensor's decision.
OUTCOME_SUCCESS = "success"
OUTCOME_FAILED = "failed"
OUTCOME_CANCELLED = "cancelled"


def outcome_of(
    status: TaskStatus,
    *,
    success_states: Iterable[str] = (),
    failure_states: Iterable[str] = (),
    partial_success_ok: bool = False,
) -> str | None:
    """``success``, ``failed``, ``cancelled``, or ``None`` to keep waiting.

    ``success_states`` / ``failure_states`` are extra *raw* status values (compared
    case-insensitively) that end the wait; they win over the package's own mapping.
    ``partially_succeeded`` (PDS ``PartialSucceed``) fails unless ``partial_success_ok``.
    """
    return outcome_for(
        status,
        lowered(success_states) if success_states else _NONE,
        lowered(failure_states) if failure_states else _NONE,
        partial_success_ok,
    )


_NONE: frozenset[str] = frozenset()


def lowered(raw_statuses: Iterable[str]) -> frozenset[str]:
    """Extra raw status values as :func:`outcome_for` takes them: lower-cased, in a set (the one
    shared empty set when there are none: thousands of waiting triggers keep theirs)."""
    values = frozenset(s.lower() for s in raw_statuses)
    return values if values else _NONE


def outcome_for(
    status: TaskStatus, success: frozenset[str], failure: frozenset[str], partial_success_ok: bool
) -> str | None:
    """:func:`outcome_of` with the extra raw statuses already :func:`lowered`: a loop that
    decides the outcome of every poll prepares them once."""
    if success or failure:
        raw = (status.raw_status or "").lower()
        if raw and raw in success:
            return OUTCOME_SUCCESS
        if raw and raw in failure:
            return OUTCOME_FAILED
    state = status.state
    if state == RUNNING:
        return None
    if state == SUCCEEDED:
        return OUTCOME_SUCCESS
    if state == PARTIALLY_SUCCEEDED:
        return OUTCOME_SUCCESS if partial_success_ok else OUTCOME_FAILED
    if state == FAILED:
        return OUTCOME_FAILED
    if state == CANCELLED:
        return OUTCOME_CANCELLED
    return None


def describe_ids(service: str, ids: Mapping[str, Any]) -> str:
    """A task's service and ids for messages: ``dlf async_task_id=t-1 catalog_id=123``."""
    return " ".join([service, *(f"{k}={v}" for k, v in ids.items())])


def describe(status: TaskStatus) -> str:
    """One human line: service, ids, state, raw status, progress, message, code, request id."""
    text = f"{describe_ids(status.service, status.ids)}: {status.state}"
    if status.raw_status is not None:
        text += f" (raw status {status.raw_status!r})"
    if status.progress is not None:
        text += f", {status.progress:.0%} done"
    if status.error_code:
        text += f", error code {status.error_code}"
    if status.message:
        text += f": {status.message}"
    if status.request_id:
        text += f" [RequestId: {status.request_id}]"
    return text
