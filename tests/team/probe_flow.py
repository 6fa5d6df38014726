"""A flow for the team-mode tests, deployed from this directory to the team work pool.

``flaky`` fails its first attempt (a marker file remembers it) and succeeds on the retry;
``report`` writes what the run saw (its environment's tracking URI, the attempt count).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from prefect import flow, task


@task(retries=1, retry_delay_seconds=1)
def flaky(marker: str) -> int:
    path = Path(marker)
    attempts = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempts))
    if attempts == 1:
        raise RuntimeError("transient failure on the first attempt")
    return attempts


@task
def report(out: str, attempts: int) -> None:
    Path(out).write_text(json.dumps({"attempts": attempts, "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI"),
                                     "cwd": os.getcwd()}))


@flow(name="team-probe")
def probe(out: str) -> int:
    attempts = flaky(out + ".marker")
    report(out, attempts)
    return attempts
