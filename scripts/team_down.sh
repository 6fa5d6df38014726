#!/usr/bin/env bash
# Stop every service that scripts/team_up.sh started (worker first, PostgreSQL last); data stays in .team/.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m serac.team down "$@"
