#!/usr/bin/env bash
# Team mode on this machine: PostgreSQL, MLflow server (PostgreSQL backend, shared artifact root),
# Prefect server, the serac-pool process work pool, the prefect.yaml deployments with their cron
# schedules, the heartbeat automation, and one worker. Everything on 127.0.0.1.
# Options: python -m serac.team up --help. Afterwards: source .team/team.env
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m serac.team up "$@"
