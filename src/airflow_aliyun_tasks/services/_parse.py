"""Helpers the parsers share: typed access to JSON bodies and the quirks common to Alibaba
Cloud responses (``"null"`` strings, numbers as strings, serde-reserved keys)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.errors import BadResponseError
from airflow_aliyun_tasks.status import UNKNOWN

#: What ``json.loads`` gives that :func:`raw` keeps as it is.
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def body_of(body: Any, service: str) -> Mapping[str, Any]:
    if type(body) is not dict and not isinstance(body, Mapping):  # a JSON body is a dict: no ABC check
        raise BadResponseError(f"{service} response is not a JSON object")
    return body


def obj(body: Mapping[str, Any], key: str, service: str) -> Mapping[str, Any]:
    value = body_of(body, service).get(key)
    if type(value) is not dict and not isinstance(value, Mapping):
        raise BadResponseError(f"{service} response has no {key!r} object")
    return value


def raw(value: Any) -> Any:
    """The body as kept in ``TaskStatus.raw``: keys starting with ``__`` are dropped at every
    level, because Airflow's serializer reserves ``__classname__``/``__id__`` and would refuse
    the trigger event or XCom. No documented field starts with ``__``."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is dict or isinstance(value, Mapping):
        kept = {}
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            if name.startswith("__"):
                continue
            # the hot path: a scalar leaf of what json.loads gives is kept without a call
            kept[name] = item if type(item) in _JSON_SCALARS else raw(item)
        return kept
    if isinstance(value, list):
        return [item if type(item) in _JSON_SCALARS else raw(item) for item in value]
    return value


def text(value: Any) -> str | None:
    """A string field, with the quirks normalized: ``"null"`` and blank become ``None``,
    surrounding whitespace (MMA's trailing newlines) is stripped; numbers become strings."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if not stripped or stripped.lower() == "null":
        return None
    return stripped


def state(table: Mapping[str, str], raw_status: str | None) -> str:
    """The package's state for a raw status (compared case-insensitively); unknown otherwise."""
    if raw_status is None:
        return UNKNOWN
    return table.get(raw_status.lower(), UNKNOWN)


def fraction(done: Any, total: Any) -> float | None:
    """``done / total`` clamped to [0, 1]; ``None`` when either is not a usable number."""
    if isinstance(done, bool) or isinstance(total, bool):
        return None
    if not isinstance(done, int | float) or not isinstance(total, int | float) or total <= 0:
        return None
    try:
        share = done / total
    except OverflowError:  # huge JSON integers
        return None
    if math.isnan(share):  # inf/inf, NaN inputs
        return None
    return float(min(max(share, 0.0), 1.0))
