"""Team mode: the pipeline's services on one machine (PostgreSQL, MLflow server, Prefect server and
worker), started and stopped by ``python -m serac.team up|down`` (``make team-up`` / ``make team-down``)."""
