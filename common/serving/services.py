"""The serving bundles a server holds, one per system, and how they change while it runs.

A system that cannot serve yet answers 503 saying what to run, and is tried again at most every
RETRY_SECONDS, so a first training while the server runs needs no restart.

Hot reload: a watcher thread asks the model registry every RELOAD_SECONDS which version each of a system's
models carries as champion. When a training has moved an alias, the new bundle is loaded beside the one
serving, then put in its place by one assignment: a request holds the bundle it started with to its end,
so none fails or mixes two versions. A bundle that fails to load, or to answer a sample request
(common/serving/smoke.py), leaves the old one serving.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from typing import Any

import faiss
from fastapi import HTTPException
from mlflow.exceptions import MlflowException

from common.app.config import load_config
from common.app.registry import get_system
from common.app.system import ServiceUnavailable
from common.serving.service import release_freed_memory
from common.serving.smoke import first_request_problem
from common.tracking.runs import champion_versions

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0  # how often an unavailable system is tried again
RELOAD_SETTING = "MLSD_RELOAD_SECONDS"
RELOAD_SECONDS = 30.0  # how often the registry is asked for new champions (0: never)


def reload_interval() -> float:
    return float(os.environ.get(RELOAD_SETTING, RELOAD_SECONDS))


def settle_memory() -> None:
    """After a bundle is loaded: the runtime settings loading resets, and the long-lived objects frozen out of
    the garbage collector's walks (long pauses in the latency tail). Unfreezing first lets a replaced bundle's
    reference cycles be collected: frozen objects never are."""
    faiss.omp_set_num_threads(1)  # a single query's ANN search: intra-op threads would fight the requests'
    gc.unfreeze()
    release_freed_memory()
    gc.freeze()


class Services:
    """The loaded serving bundle of each system, the champion versions it was loaded from, or why it is not
    loaded."""

    def __init__(self, names: list[str], scale: str | None):
        self.names = names
        self.scale = scale
        self.loaded: dict[str, Any] = {}
        self.versions: dict[str, dict[str, str]] = {}
        self.unavailable: dict[str, str] = {}
        self._last_attempt: dict[str, float] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> bool:
        """Load the system's bundle and put it in place; False (and why, for the 503) if it cannot serve."""
        self._last_attempt[name] = time.monotonic()
        config = load_config(name, self.scale)
        try:
            # Read before loading: a promotion in between is seen at the next poll (one reload more, none missed).
            versions = champion_versions(name)
            bundle = get_system(name).load_service(config)
        except (ServiceUnavailable, MlflowException) as error:
            self.unavailable[name] = str(error)
            log.warning("%s: cannot serve yet: %s", name, error)
            return False
        problem = first_request_problem(name, bundle, config)
        if problem is not None:
            self.unavailable[name] = f"the champion ({versions}) loads but fails on a sample request: {problem}"
            log.error("%s: %s", name, self.unavailable[name])
            return False
        self.loaded[name] = bundle  # one assignment: the swap a request never sees half done
        self.versions[name] = versions
        self.unavailable.pop(name, None)
        log.info("%s: serving bundle loaded (%s)", name, versions)
        return True

    def get(self, name: str) -> Any:
        # Retry a system that could not serve, but not on every request: a load attempt
        # queries MLflow and opens the feature store.
        if name not in self.loaded and time.monotonic() - self._last_attempt.get(name, 0.0) >= RETRY_SECONDS:
            with self._lock:
                if name not in self.loaded:
                    self.load(name)
        if name not in self.loaded:
            raise HTTPException(status_code=503, detail=f"{self.unavailable[name]}. Run: make train SYSTEM={name}")
        return self.loaded[name]

    def reload_promoted(self) -> list[str]:
        """Load again every served system whose champions moved since it was loaded; returns those reloaded.
        Whatever goes wrong (a registry hiccup, a new model that fails to load), the old bundle keeps serving
        and the next poll tries again."""
        reloaded = []
        for name in list(self.loaded):
            try:
                if champion_versions(name) == self.versions[name]:
                    continue
                with self._lock:
                    if self.load(name):
                        reloaded.append(name)
            except Exception:
                log.exception("%s: reloading the new champion failed; the previous one keeps serving", name)
        if reloaded:
            settle_memory()
        return reloaded


class ChampionWatcher:
    """A daemon thread calling Services.reload_promoted every `interval` seconds until stopped."""

    def __init__(self, services: Services, interval: float):
        self.services = services
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.services.reload_promoted()
