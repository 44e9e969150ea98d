"""Logging for the commands and the server: our progress at INFO, the libraries' chatter
(Feast, MLflow, SQLAlchemy deprecations) only when it matters."""

from __future__ import annotations

import logging
import warnings


def quiet_libraries() -> None:
    # Feast installs warning filters and MLflow its log levels on import: ours go after.
    import feast  # noqa: F401
    import mlflow  # noqa: F401

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("feast", "mlflow", "alembic", "faiss", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for category in (DeprecationWarning, FutureWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
