"""The one normalized result every layer speaks: :class:`TaskStatus`.

States are plain strings on purpose: they cross the triggerer/worker boundary through
Airflow's serializer, which rejects enums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    "raw",
)


@dataclass(frozen=True)
class TaskStatus:
    """Status of one Alibaba Cloud async task, normalized across services.

    :param service: ``dlf``, ``dataworks``, ``mma`` or ``pds``.
    :param ids: the ids that identify the task, as strings (e.g. ``{"job_id": "..."}``).
    :param state: one of :data:`STATES`.
    :param raw_status: the service's own status value, verbatim (``None`` if absent).
    :param progress: 0..1 where the API reports progress, else ``None``.
    :param message: the service's human message or error message, if any.
    :param error_code: the service's error code, if any.
    :param request_id: the request id of the response that produced this status.
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
