"""The docs tables made from the service registry and the connection's table of extras.

Each table stands in a Markdown file between ``<!-- BEGIN registry:NAME -->`` and
``<!-- END registry:NAME -->``. ``python scripts/registry_tables.py`` rewrites them;
``--check`` fails (exit 1) when a file disagrees with them (tests/test_docs.py runs it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from airflow_aliyun_tasks.config import AUTH_TYPES, EXTRAS
from airflow_aliyun_tasks.get_provider_info import get_provider_info
from airflow_aliyun_tasks.sensors import AlibabaCloudTaskSensor
from airflow_aliyun_tasks.services import SERVICES, ServiceSpec, StartOperation

ROOT = Path(__file__).resolve().parent.parent


def _sensors() -> dict[str, type[AlibabaCloudTaskSensor]]:
    found: dict[str, type[AlibabaCloudTaskSensor]] = {}
    todo = list(AlibabaCloudTaskSensor.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__ == "airflow_aliyun_tasks.sensors":
            found[cls.service] = cls
    return found


def _host(template: str) -> str:
    return (
        "`"
        + re.sub(r"\{(\w+)\}", lambda m: "{region}" if m[1] == "region_id" else "{" + m[1] + "}", template)
        + "`"
    )


def _ids(spec: ServiceSpec) -> str:
    return ", ".join(f"`{p.name}" + ("`" if p.required else "=None`") for p in spec.ids)


def services_table() -> str:
    sensors = _sensors()
    rows = [
        "| service | sensor (ids, templated) | status call | RAM action |",
        "|---|---|---|---|",
    ]
    for name, spec in SERVICES.items():
        rows.append(
            f"| `{name}` | `{sensors[name].__name__}` ({_ids(spec)}) | {spec.label} `{spec.action}` "
            f"({spec.version}) | `{spec.ram_action}` |"
        )
    return "\n".join(rows)


def sensors_table() -> str:
    sensors = _sensors()
    rows = ["| sensor | waits on | ids (templated) | page |", "|---|---|---|---|"]
    for name, spec in SERVICES.items():
        page = Path(spec.docs_page).name
        rows.append(
            f"| `{sensors[name].__name__}` | {spec.label} `{spec.action}` | {_ids(spec)} | [{page}]({page}) |"
        )
    return "\n".join(rows)


def endpoints_table() -> str:
    rows = [
        "| service (key in `endpoints`) | or the extra | public host | VPC host |",
        "|---|---|---|---|",
    ]
    for name, spec in SERVICES.items():
        rows.append(
            f"| `{name}` | `{spec.endpoint_extra}` | {_host(spec.endpoint)} | {_host(spec.vpc_endpoint)} |"
        )
    return "\n".join(rows)


def _where(path: str) -> str:
    return f"request `{path.removeprefix('request:')}`" if path.startswith("request:") else f"`{path}`"


def _ids_of(op: StartOperation) -> str:
    """Where a start operation's answer has the task's ids (a two-phase start: its follow-up's)."""
    if op.follow_up is not None:
        fu = op.follow_up
        ids = ", ".join(f"`{n}` ← {_where(w)}" for n, w in fu.task_ids.items())
        params = ", ".join(f"`{p}`" for p in fu.params)
        return f"two phases: {params}, then `{fu.action}` until `{fu.status}` is {', '.join(fu.done)}: {ids}"
    ids = ", ".join(f"`{n}` ← {_where(w)}" for n, w in op.task_ids.items())
    if op.may_finish_at_once:
        ids += " (absent when it finished at once)"
    return ids


def _idempotency(op: StartOperation) -> str:
    """A client token, an id the caller chooses for the task (the key is one of its ids), or none."""
    if not op.idempotency_param:
        return "none"
    where = f"`{op.idempotency_param}` ({op.idempotency_location})"
    if f"request:{op.idempotency_param}" in op.task_ids.values():
        return f"caller-chosen id {where}"
    return f"client token {where}"


def _ram(spec: ServiceSpec, actions: list[str]) -> str:
    prefix, _, action = spec.ram_action.partition(":")
    if action == "*":  # no action of its own is documented for each operation
        return f"`{spec.ram_action}`"
    return ", ".join(f"`{prefix}:{a}`" for a in actions)


def start_operations_table() -> str:
    from airflow_aliyun_tasks.testing import CANCEL_OPERATIONS, START_OPERATIONS

    rows = [
        "| service | start operation | the task's ids in its answer | idempotency | cancel on kill "
        "| RAM actions | in the emulator |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spec in SERVICES.items():
        for op in spec.start_operations:
            cancel = f"`{spec.cancel.action}`" if spec.cancel else "none: keeps running"
            if spec.cancel and op.several():
                cancel += " (every task)"
            actions = [
                op.action,
                *([op.follow_up.action] if op.follow_up else []),
                spec.action,
                *([spec.cancel.action] if spec.cancel else []),
            ]
            emulated = "yes" if (name, op.action) in START_OPERATIONS else "no"
            if spec.cancel and (name, spec.cancel.action) in CANCEL_OPERATIONS:
                emulated += " (and the cancel)"
            rows.append(
                f"| `{name}` | `{op.action}` ({op.method} `{op.path}`) | {_ids_of(op)} | {_idempotency(op)} "
                f"| {cancel} | {_ram(spec, actions)} | {emulated} |"
            )
    return "\n".join(rows)


def _cell(text: str) -> str:
    """Plain text in a Markdown table cell: ``<region>`` is not an HTML tag, ``|`` not a column."""
    return text.replace("<", "\\<").replace(">", "\\>").replace("|", "\\|")


def connection_table() -> str:
    """The connection's fields: login and password, then every extra in the form's order."""
    (conn,) = get_provider_info()["connection-types"]
    labels = conn["ui-field-behaviour"]["relabeling"]
    rows = ["| field | form label | meaning |", "|---|---|---|"]
    for name, secret in (("login", False), ("password", True)):
        users = [t for t, needs in AUTH_TYPES.items() if name in needs]
        meaning = f"For {', '.join(users[:-1])} and {users[-1]}: the {labels[name]}."
        rows.append(
            f"| `{name}` | {labels[name]} | {_cell(meaning)}{' Masked in the form.' if secret else ''} |"
        )
    for extra in EXTRAS:
        masked = " Masked in the form." if extra.secret else ""
        label = extra.label if extra.form else f"(not in the form: {extra.label})"
        rows.append(f"| extra `{extra.name}` | {label} | {_cell(extra.help)}{masked} |")
    return "\n".join(rows)


#: (file, table name, maker)
TABLES: tuple[tuple[str, str, Callable[[], str]], ...] = (
    ("README.md", "connection", connection_table),
    ("README.md", "services", services_table),
    ("README.md", "endpoints", endpoints_table),
    ("docs/sensors/README.md", "sensors", sensors_table),
    ("docs/connection.md", "connection", connection_table),
    ("docs/connection.md", "endpoints", endpoints_table),
    ("docs/operators.md", "start_operations", start_operations_table),
)


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN registry:{name} -->\n)(.*?)(<!-- END registry:{name} -->)", re.S)


def render(text: str, name: str, table: str) -> str:
    pattern = _block(name)
    if not pattern.search(text):
        raise LookupError(f"no registry:{name} block")
    return pattern.sub(lambda m: m[1] + table + "\n" + m[3], text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for file, name, make in TABLES:
        path = ROOT / file
        text = path.read_text()
        new = render(text, name, make())
        if new != text:
            stale.append(f"{file} (registry:{name})")
            if not check:
                path.write_text(new)
    if stale and check:
        print("out of date with the service registry: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
