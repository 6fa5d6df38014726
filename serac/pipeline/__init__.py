"""Pipeline steps behind the Prefect flows in ``flows/``: plain, typed functions, testable without Prefect."""
