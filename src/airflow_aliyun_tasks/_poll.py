"""The poll tracker: what each poll of a waiting task means, for every loop that waits.

The sensor's ``poke``, the operator's wait on the worker, :class:`AlibabaCloudTaskTrigger` and
:class:`AlibabaCloudTaskEventTrigger` hand each status (or error) to a :class:`PollTracker` and
act on the :class:`Step` it returns: log its lines, then go on or end. What the tracker decides,
in one place:

- a change of state, raw status or progress is logged (``describe(status)``), not every
  unchanged poll;
- a raw status this package does not know is warned about once per value, while the wait goes
  on;
- transient errors (:func:`~airflow_aliyun_tasks.errors.is_transient`) are tolerated up to
  ``max_failures`` in a row (a successful poll resets the count); one more gives up, and a
  permanent error gives up at once. ``max_failures=None`` never gives up: each failure is logged
  (a permanent one at error level) with the delay ``backoff`` gives for it;
- a status that ends the wait (:func:`~airflow_aliyun_tasks.status.outcome_for`) ends it.

Each loop keeps only its own way of waiting: sleeping on the worker, ``asyncio.sleep`` in the
triggerer, deferring, rescheduling. Pure: no Airflow import, no I/O, no clock; log lines are data
(``(level, format, args)``). Cheap per poll: an unchanged poll allocates nothing and returns the
shared :data:`GO_ON`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from airflow_aliyun_tasks.errors import is_transient
from airflow_aliyun_tasks.status import UNKNOWN, TaskStatus, describe, lowered, outcome_for

__all__ = ["GAVE_UP", "GO_ON", "LogLine", "PollTracker", "Step", "log_lines"]

#: :attr:`Step.outcome` when polling gave up (the trigger's ``error`` event).
GAVE_UP = "error"

#: One log line: the logger method's name (``info``, ``warning``, ``error``), a %-format, its args.
LogLine = tuple[str, str, tuple[Any, ...]]

_UNKNOWN_STATUS = (
    "raw status %r is not one this package knows; still waiting. Add it to success_states or "
    "failure_states to end the wait on it."
)
_POLL_FAILED = "poll failed (%d/%d): %s"
_POLL_FAILED_BACKING_OFF = "poll failed (%d in a row), next in %.0f s: %s"
_POLL_FAILED_PERMANENT = (
    "poll failed (%d in a row), next in %.0f s; fix the cause (the connection, the ids) or remove "
    "the watcher: %s"
)


class Step:
    """What a loop does after one poll.

    :param outcome: ``None``: poll again. ``success`` / ``failed`` / ``cancelled``: the task
        ended (:attr:`PollTracker.last` is its final status). :data:`GAVE_UP`: polling gave up.
    :param message: the end's one line: ``describe(status)``, or why polling gave up.
    :param logs: the lines to log first (see :func:`log_lines`).
    :param error: the error polling gave up on.
    :param permanent: that error is permanent (not transient): a loop on the worker re-raises it
        as it is.
    :param delay: seconds to wait before the next poll when a tracker that never gives up backs
        off; ``None``: the loop's own interval.
    """

    __slots__ = ("delay", "error", "logs", "message", "outcome", "permanent")

    def __init__(
        self,
        outcome: str | None = None,
        message: str = "",
        logs: tuple[LogLine, ...] = (),
        *,
        error: BaseException | None = None,
        permanent: bool = False,
        delay: float | None = None,
    ) -> None:
        self.outcome = outcome
        self.message = message
        self.logs = logs
        self.error = error
        self.permanent = permanent
        self.delay = delay

    def __repr__(self) -> str:
        return (
            f"Step(outcome={self.outcome!r}, message={self.message!r}, logs={self.logs!r}, "
            f"error={self.error!r}, permanent={self.permanent!r}, delay={self.delay!r})"
        )


#: The step of an unchanged poll that does not end the wait: nothing to log, poll again.
GO_ON = Step()


def log_lines(log: Any, lines: Iterable[LogLine]) -> None:
    """Log ``lines`` (a :attr:`Step.logs`) on ``log``."""
    for level, fmt, args in lines:
        getattr(log, level)(fmt, *args)


class PollTracker:
    """Follows one wait, poll by poll: call :meth:`polled` with each status read and
    :meth:`failed` with each error a poll raised; each returns the :class:`Step` to take.

    :param what: the task, for log lines and messages read outside the task's own log (the
        triggerer's); ``None`` on the worker, where lines start with ``Poll failed``, ``Raw
        status``.
    :param success_states / failure_states: extra raw status values that end the wait.
    :param partial_success_ok: ``partially_succeeded`` ends it with success.
    :param max_failures: transient failures tolerated in a row; ``None``: never give up.
    :param backoff: with ``max_failures=None``, the seconds to wait after ``n`` failures in a row.
    """

    __slots__ = (
        "_backoff",
        "_failure",
        "_max_failures",
        "_partial_success_ok",
        "_progress",
        "_raw",
        "_state",
        "_success",
        "_warned",
        "_what",
        "failures",
        "last",
        "polls",
    )

    def __init__(
        self,
        *,
        what: str | None = None,
        success_states: Iterable[str] = (),
        failure_states: Iterable[str] = (),
        partial_success_ok: bool = False,
        max_failures: int | None = 5,
        backoff: Callable[[int], float] | None = None,
    ) -> None:
        if max_failures is None and backoff is None:
            raise ValueError("a tracker that never gives up needs a backoff")
        self._what = what
        self._success = lowered(success_states)
        self._failure = lowered(failure_states)
        self._partial_success_ok = partial_success_ok
        self._max_failures = max_failures
        self._backoff = backoff
        self._state: str | None = None
        self._raw: str | None = None
        self._progress: float | None = None
        # The raw statuses warned about; None until the first (most waits never see one).
        self._warned: set[str | None] | None = None
        #: transient (or, never giving up, any) failures in a row
        self.failures = 0
        #: successful polls
        self.polls = 0
        #: the last status read, ``None`` before the first
        self.last: TaskStatus | None = None

    def _line(self, level: str, fmt: str, *args: Any) -> LogLine:
        """A log line, prefixed with :attr:`what` (``"dlf t-1: poll failed"``) or capitalized."""
        if self._what:
            return level, "%s: " + fmt, (self._what, *args)
        return level, fmt[0].upper() + fmt[1:], args

    def polled(self, status: TaskStatus) -> Step:
        """A poll read ``status``."""
        self.polls += 1
        self.failures = 0
        self.last = status
        outcome = outcome_for(status, self._success, self._failure, self._partial_success_ok)
        state = status.state
        raw = status.raw_status
        progress = status.progress
        new_unknown = (
            outcome is None and state == UNKNOWN and (self._warned is None or raw not in self._warned)
        )
        if state == self._state and raw == self._raw and progress == self._progress:
            if outcome is None and not new_unknown:
                return GO_ON  # the hot path: nothing changed, nothing to say
            text = describe(status) if outcome is not None else ""
            logs: tuple[LogLine, ...] = ()
        else:  # a change: logged
            self._state, self._raw, self._progress = state, raw, progress
            text = describe(status)
            logs = (("info", "%s", (text,)),)
        if new_unknown:
            if self._warned is None:
                self._warned = set()
            self._warned.add(raw)
            logs += (self._line("warning", _UNKNOWN_STATUS, raw),)
        return Step(outcome, text if outcome is not None else "", logs)

    def failed(self, error: BaseException) -> Step:
        """A poll raised ``error``."""
        transient = is_transient(error)
        if self._max_failures is None:
            assert self._backoff is not None
            self.failures += 1
            delay = self._backoff(self.failures)
            if transient:
                line = self._line("warning", _POLL_FAILED_BACKING_OFF, self.failures, delay, error)
            else:
                line = self._line("error", _POLL_FAILED_PERMANENT, self.failures, delay, error)
            return Step(None, "", (line,), delay=delay)
        if not transient:
            message = f"{self._what}: {error}" if self._what else f"Polling failed: {error}"
            return Step(GAVE_UP, message, error=error, permanent=True)
        self.failures += 1
        if self.failures > self._max_failures:
            return Step(
                GAVE_UP,
                f"{self._what + ': ' if self._what else ''}{self.failures} polls in a row failed (limit {self._max_failures}); "
                f"last error: {error}",
                error=error,
            )
        return Step(
            None, "", (self._line("warning", _POLL_FAILED, self.failures, self._max_failures, error),)
        )
