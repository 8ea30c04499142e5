"""Run the real-deployment tests on their own and show their figures.

    .venv/bin/python scripts/deployment_test.py [--sqlite-only] [pytest options]

Runs ``tests/test_real_triggerer.py`` (SQLite, one triggerer) and ``tests/test_deployment.py``
(PostgreSQL on 127.0.0.1:5432, two triggerers, failover, graceful restart, secrets audit) with
their output shown. Both are also part of ``make test``. The deployment test writes its figures
to ``docs/reliability.md``. Set ``ALIYUN_STACK_KEEP_FAILED=1`` to keep the ``AIRFLOW_HOME`` of
a failed run for inspection (its path is printed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    tests = ["tests/test_real_triggerer.py"]
    if "--sqlite-only" in argv:
        argv = [a for a in argv if a != "--sqlite-only"]
    else:
        tests.append("tests/test_deployment.py")
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    cmd = [sys.executable, "-m", "pytest", "-s", "-v", "-p", "no:cacheprovider", *tests, *argv]
    return subprocess.call(cmd, cwd=ROOT, env=env)  # noqa: S603 (our own interpreter and tests)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
