"""``python -m serac.team up|down|env``: start or stop team mode's services on this machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from serac.team.stack import ENV_FILE, TeamConfig, down, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serac.team", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="PostgreSQL, MLflow server, Prefect server, work pool, deployments, worker")
    stop = sub.add_parser("down", help="stop every service started by `up`")
    show = sub.add_parser("env", help="print the exports of a running team (source <state-dir>/team.env)")
    for p in (start, stop, show):
        p.add_argument("--state-dir", type=Path, default=Path(os.environ.get("SERAC_TEAM_DIR", ".team")))
    start.add_argument("--pg-data", type=Path, default=None, help="PostgreSQL data dir (default STATE/postgres)")
    start.add_argument("--artifact-root", default=None,
                       help="MLflow artifact store: a path or s3:// / gs:// URL (default STATE/mlflow-artifacts)")
    start.add_argument("--pg-port", type=int, default=0)
    start.add_argument("--mlflow-port", type=int, default=5000)
    start.add_argument("--prefect-port", type=int, default=4200)
    start.add_argument("--prefect-db", choices=("sqlite", "postgres"), default="postgres")
    start.add_argument("--no-worker", action="store_true", help="start no worker here (GPU workers elsewhere)")
    start.add_argument("--install-postgres", action="store_true",
                       help="apt-get install postgresql when its binaries are missing (root)")
    args = parser.parse_args(argv)

    if args.command == "down":
        names = down(args.state_dir)
        print("stopped: " + (", ".join(names) if names else "nothing was running"))
        return 0
    if args.command == "env":
        path = args.state_dir / ENV_FILE
        if not path.exists():
            print(f"no team running ({path} missing)", file=sys.stderr)
            return 1
        print(path.read_text(), end="")
        return 0
    team = up(TeamConfig(state_dir=args.state_dir, pg_data=args.pg_data, artifact_root=args.artifact_root,
                         pg_port=args.pg_port, mlflow_port=args.mlflow_port, prefect_port=args.prefect_port,
                         prefect_db=args.prefect_db, worker=not args.no_worker,
                         install_postgres=args.install_postgres))
    print(json.dumps({**team.env(), "services": {k: s.pid for k, s in team.services.items()},
                      "logs": str(team.config.state_dir / "logs")}, indent=2))
    print(f"source {team.config.state_dir / ENV_FILE}   # then run flows / serac commands against the team servers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
