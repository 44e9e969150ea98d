"""docker-compose.yml against what the code reads. Docker is not on the development machines, so the file is
checked here rather than run (tests/scale/test_services.py runs the same engines natively, with the settings
checked here).

The environment variables the code reads are collected from common/ and systems/ with `ast`: `os.environ.get(K)`,
`os.environ[K]`, `os.getenv(K)` and `K in os.environ`, with K a string or a module-level string constant (also
an imported one, e.g. REDIS_SETTING). Writes (`os.environ[K] = ...`, `setdefault`, `pop`) are not reads, and a
key computed at run time (a loop over a mapping of settings) cannot be named statically and is skipped.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from feast.infra.online_stores.redis import RedisOnlineStore
from sqlalchemy.engine import make_url

from common.app.paths import REPO_ROOT
from common.features.store import REDIS_SETTING, REGISTRY_SETTING

COMPOSE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SOURCE_DIRS = ("common", "systems")
CONSUMERS = ("train", "api")  # the project's own processes: they read the settings below

# The scale path: each backend is chosen by one of these alone, and training and the API must agree on all.
SCALE_PATH = {"MLFLOW_TRACKING_URI", REDIS_SETTING, REGISTRY_SETTING, "MLSD_DATA_DIR"}

# Read by the code, and deliberately not in compose's environment.
NOT_IN_COMPOSE = {
    "MLSD_SYSTEMS": "`serve` sets it from --system (compose passes ${SYSTEM} there)",
    "MLSD_SCALE": "`serve` sets it from --scale (compose passes ${SCALE} there)",
    "MLSD_CATALOG_SIZE": "the benchmark's catalogue padding (common/bench), never set for the served API",
    "MLSD_RELOAD_SECONDS": "the API's champion hot-reload interval: its default suits compose",
    "RAY_STORAGE": "storage every node of a real Ray cluster reaches; compose's training runs a local Ray cluster",
}

# Variables of third-party tools in training's or the API's environment that the code relies on without reading
# them itself: none (the MLflow server alone talks to S3, so the clients need no AWS_* variables).
THIRD_PARTY: dict[str, str] = {}

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY|AUTH", re.IGNORECASE)
PLACEHOLDER = "change-me"  # what every documented default password says
# ${NAME}, ${NAME:-default} and the other operators, a bare $NAME, or $$ (a literal $, not interpolated).
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<operator>:-|-|:\?|\?|:\+|\+)(?P<default>[^${}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_]\w*)"
)


# --- what the code reads -------------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` (or `NAME: str = "text"`)."""
    constants = {}
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            constants.update({target.id: value.value for target in targets if isinstance(target, ast.Name)})
    return constants


def _is_environ(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"  # from os import environ


def _is_getenv(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "getenv" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "getenv"


def _keys_read(tree: ast.Module) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_get = isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value)
            if environ_get or _is_getenv(func):
                yield node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            yield node.slice
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
            if _is_environ(node.comparators[0]):
                yield node.left


def variables_read(trees: dict[str, ast.Module]) -> set[str]:
    """The environment variables the modules (module name -> tree) read, by name."""
    constants = {module: _string_constants(tree) for module, tree in trees.items()}
    found = set()
    for module, tree in trees.items():
        names = dict(constants[module])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in constants:
                for alias in node.names:
                    if alias.name in constants[node.module]:
                        names[alias.asname or alias.name] = constants[node.module][alias.name]
        for key in _keys_read(tree):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.add(key.value)
            elif isinstance(key, ast.Name) and key.id in names:
                found.add(names[key.id])
    return found


@cache
def code_reads() -> frozenset[str]:
    paths = sorted(path for directory in SOURCE_DIRS for path in (REPO_ROOT / directory).rglob("*.py"))
    return frozenset(variables_read({_module_name(path): ast.parse(path.read_text()) for path in paths}))


# --- the compose file ----------------------------------------------------------------------------------------


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


@cache
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f".env.example: {line!r} is not NAME=value"
            assert name.strip() not in values, f".env.example sets {name} twice"
            values[name.strip()] = value.strip()
    return values


def resolve(text: str) -> str:
    """`text` as compose passes it with .env.example's values: ${NAME:-default} -> the value, $$ -> $."""

    def value(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env_example()[match.group("name") or match.group("bare")]

    return INTERPOLATION.sub(value, text)


def strings(node) -> Iterator[str]:
    """Every string value in the YAML tree (keys are not interpolated)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def interpolations() -> list[re.Match]:
    return [match for text in strings(compose()) for match in INTERPOLATION.finditer(text) if match.group(0) != "$$"]


def environment(service: str) -> dict[str, str]:
    env = services()[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def command(service: str) -> list[str]:
    value = services()[service].get("command") or []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def option(service: str, flag: str) -> str:
    arguments = command(service)
    assert flag in arguments, f"{service}'s command has no {flag}: {arguments}"
    return arguments[arguments.index(flag) + 1]


def depends_on(service: str) -> dict[str, str]:
    """Service -> the condition it waits for (a plain list waits for the container to start only)."""
    value = services()[service].get("depends_on") or {}
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: (settings or {}).get("condition", "service_started") for name, settings in value.items()}


def one_shot() -> set[str]:
    """Jobs: what another service waits on to have completed."""
    return {name for service in services() for name, condition in depends_on(service).items()
            if condition == "service_completed_successfully"}  # fmt: skip


def hosts_addressed(service: str) -> set[str]:
    """The other services this one names as host:port in its environment or command."""
    text = " ".join(resolve(value) for value in [*environment(service).values(), *command(service)])
    return {
        other for other in services() if other != service and re.search(rf"(?<![\w.-]){re.escape(other)}:\d+", text)
    }


def published(service: str) -> list[dict]:
    """The service's published ports as {host_ip, published, target}, after interpolation."""
    ports = []
    for entry in services()[service].get("ports") or []:
        if isinstance(entry, dict):
            ports.append({key: resolve(str(entry.get(key, ""))) for key in ("host_ip", "published", "target")})
            continue
        parts = resolve(str(entry)).split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        ports.append({"host_ip": host_ip, "published": parts[-2] if len(parts) > 1 else "", "target": parts[-1]})
    return ports


# --- the scanner itself --------------------------------------------------------------------------------------

SAMPLE = """
import os
from common.features.store import REDIS_SETTING as REDIS
SETTING = "SAMPLE_BY_CONSTANT"
os.environ.get("SAMPLE_GET", "default")
os.environ["SAMPLE_ITEM"]
os.getenv("SAMPLE_GETENV")
os.environ.get(SETTING)
"SAMPLE_IN" in os.environ
os.environ.get(REDIS)
os.environ.setdefault("SAMPLE_SET_DEFAULT", "1")
os.environ["SAMPLE_ASSIGNED"] = "1"
os.environ.pop("SAMPLE_POPPED", None)
{name: os.environ.get(name) for name in ("SAMPLE_DYNAMIC",)}
"""


def test_the_scanner_finds_reads_and_skips_writes():
    store = REPO_ROOT / "common" / "features" / "store.py"
    trees = {"sample": ast.parse(SAMPLE), "common.features.store": ast.parse(store.read_text())}
    assert variables_read(trees) - {REGISTRY_SETTING, "MLFLOW_TRACKING_URI"} == {
        "SAMPLE_GET",
        "SAMPLE_ITEM",
        "SAMPLE_GETENV",
        "SAMPLE_BY_CONSTANT",
        "SAMPLE_IN",
        REDIS_SETTING,
    }


def test_the_code_reads_the_scale_path_settings():
    """Else the scan found nothing (and every check below would pass on nothing) or a setting was renamed."""
    assert SCALE_PATH <= code_reads(), f"the code no longer reads {sorted(SCALE_PATH - code_reads())}"


# --- training and the API ------------------------------------------------------------------------------------


def test_every_variable_the_code_reads_is_set_for_training_and_the_api_alike():
    needed = code_reads() - NOT_IN_COMPOSE.keys()
    assert needed == SCALE_PATH, (
        f"read by the code, in neither compose nor NOT_IN_COMPOSE: {sorted(needed - SCALE_PATH)}; "
        "set them in docker-compose.yml's x-scale-path, or say in NOT_IN_COMPOSE why compose leaves them out"
    )
    for service in CONSUMERS:
        missing = needed - environment(service).keys()
        assert not missing, f"{service} lacks {sorted(missing)}"
    assert {name: environment("train")[name] for name in needed} == {name: environment("api")[name] for name in needed}


def test_the_allow_list_names_variables_the_code_still_reads_and_compose_leaves_alone():
    stale = NOT_IN_COMPOSE.keys() - code_reads()
    assert not stale, f"NOT_IN_COMPOSE names variables the code no longer reads: {sorted(stale)}"
    for service in CONSUMERS:
        overlap = NOT_IN_COMPOSE.keys() & environment(service).keys()
        assert not overlap, f"{service} sets {sorted(overlap)}, which NOT_IN_COMPOSE says compose leaves out"


def test_training_and_the_api_set_nothing_the_code_does_not_read():
    for service in CONSUMERS:
        unused = environment(service).keys() - code_reads() - THIRD_PARTY.keys()
        assert not unused, f"{service} sets {sorted(unused)}, which no code under {SOURCE_DIRS} reads"


def test_training_and_the_api_share_the_system_the_scale_and_the_data_volume():
    assert option("train", "--system") == option("api", "--system")
    assert option("train", "--scale") == option("api", "--scale")
    data_dir = environment("train")["MLSD_DATA_DIR"]
    mounts = {}
    for service in CONSUMERS:
        volumes = [str(volume).split(":") for volume in services()[service].get("volumes") or []]
        sources = [source for source, target, *_ in volumes if target.rstrip("/") == data_dir.rstrip("/")]
        assert len(sources) == 1, f"{service} mounts nothing at MLSD_DATA_DIR={data_dir}"
        mounts[service] = sources[0]
    assert mounts["train"] == mounts["api"]
    assert mounts["train"] in (compose().get("volumes") or {}), f"{mounts['train']} is not a named volume"


# --- services ------------------------------------------------------------------------------------------------


def test_every_service_is_used():
    """The API is the end consumer: every other service is something it waits for, directly or not; and every
    long-running one is addressed by another service's settings (host:port in its environment or command)."""
    reached, todo = set(), ["api"]
    while todo:
        for name in depends_on(todo.pop()):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    assert reached == services().keys() - {"api"}, f"nothing waits for {sorted(services().keys() - reached - {'api'})}"
    addressed = {host for service in services() for host in hosts_addressed(service)}
    long_running = services().keys() - one_shot() - {"api"}
    assert long_running <= addressed, f"no service addresses {sorted(long_running - addressed)}"
    for service in CONSUMERS:
        assert {"mlflow", "redis", "postgres"} <= hosts_addressed(service)


def test_services_wait_for_what_they_address_to_be_healthy():
    for service in services():
        for host in hosts_addressed(service):
            assert depends_on(service).get(host) == "service_healthy", f"{service} does not wait for {host}'s health"
        for name, condition in depends_on(service).items():
            expected = "service_completed_successfully" if name in one_shot() else "service_healthy"
            assert condition == expected, f"{service} waits for {name} with {condition}, not {expected}"
    assert depends_on("api")["train"] == "service_completed_successfully"


def test_long_running_services_have_healthchecks_and_jobs_run_once():
    for name, service in services().items():
        if name in one_shot():
            assert service.get("restart") == "no", f"the job {name} must not restart"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_published_ports_bind_loopback_only():
    for name in services():
        for port in published(name):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1"
    assert [port["target"] for port in published("api")] == [option("api", "--port")]
    assert [port["target"] for port in published("mlflow")] == [option("mlflow", "--port")]


# --- settings as the code parses them ------------------------------------------------------------------------


def test_the_tracking_uri_is_the_mlflow_server_as_it_accepts_callers():
    uri = urlsplit(resolve(environment("train")["MLFLOW_TRACKING_URI"]))
    assert uri.scheme == "http"  # common/tracking/runs.py: a server keeps artifacts in its own store
    assert uri.hostname == "mlflow" and str(uri.port) == option("mlflow", "--port")
    assert option("mlflow", "--host") == "0.0.0.0"  # reachable from the other containers
    # MLflow answers 403 to a Host header it does not allow (by default only loopback and private addresses).
    assert uri.netloc in resolve(option("mlflow", "--allowed-hosts")).split(",")


def test_the_registry_and_mlflows_backend_store_are_one_postgres_database_over_psycopg3():
    registry = make_url(resolve(environment("train")[REGISTRY_SETTING]))
    assert registry.drivername == "postgresql+psycopg"  # psycopg 3, as pyproject.toml installs
    registry.get_dialect()  # the driver imports
    assert registry.host == "postgres" and registry.port == 5432
    backend = make_url(resolve(option("mlflow", "--backend-store-uri")))
    assert (backend.drivername, backend.host, backend.port, backend.database, backend.username) == (
        registry.drivername,
        registry.host,
        registry.port,
        registry.database,
        registry.username,
    )
    postgres = {name: resolve(value) for name, value in environment("postgres").items()}
    assert (registry.username, registry.password, registry.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert backend.password == registry.password


def test_feast_reads_the_redis_connection_string_as_redis_requires():
    nodes, params = RedisOnlineStore._parse_connection_string(resolve(environment("train")[REDIS_SETTING]))
    assert nodes == [{"host": "redis", "port": "6379"}]
    assert str(params.get("password")) == resolve(option("redis", "--requirepass"))


def test_mlflow_keeps_artifacts_in_the_bucket_the_job_creates():
    destination = urlsplit(resolve(option("mlflow", "--artifacts-destination")))
    assert destination.scheme == "s3"
    assert "--serve-artifacts" in command("mlflow")  # clients go through the server: no S3 credentials for them
    assert command("minio-bucket")[:2] == ["mb", "--ignore-existing"]
    alias, bucket = resolve(command("minio-bucket")[2]).split("/", 1)
    assert bucket == destination.netloc
    mc_host = urlsplit(resolve(environment("minio-bucket")[f"MC_HOST_{alias}"]))
    mlflow = {name: resolve(value) for name, value in environment("mlflow").items()}
    endpoint = urlsplit(mlflow["MLFLOW_S3_ENDPOINT_URL"])
    assert (endpoint.hostname, endpoint.port) == (mc_host.hostname, mc_host.port) == ("minio", 9000)
    minio = {name: resolve(value) for name, value in environment("minio").items()}
    root = (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    assert (mlflow["AWS_ACCESS_KEY_ID"], mlflow["AWS_SECRET_ACCESS_KEY"]) == root
    assert (mc_host.username, mc_host.password) == root


# --- credentials and .env ------------------------------------------------------------------------------------


def test_every_interpolated_variable_has_the_documented_default():
    matches = interpolations()
    names = {match.group("name") or match.group("bare") for match in matches}
    assert names == env_example().keys(), (
        f"in compose only: {sorted(names - env_example().keys())}; "
        f"in .env.example only: {sorted(env_example().keys() - names)}"
    )
    for match in matches:
        assert match.group("operator") == ":-", f"{match.group(0)}: give it a default, ${{NAME:-default}}"
        name = match.group("name")
        assert match.group("default") == env_example()[name], f"{match.group(0)}: .env.example says {name}=..."
    leftover = [text for text in strings(compose()) if "$" in INTERPOLATION.sub("", text)]
    assert not leftover, f"interpolations compose would not read as intended: {leftover}"


def test_no_credential_is_written_into_compose_or_env_example():
    for name, value in env_example().items():
        if SECRET_NAME.search(name):
            assert PLACEHOLDER in value, f".env.example: {name} must be a documented placeholder, not a secret"
        assert not re.search(r"(?:AKIA|ASIA)[0-9A-Z]{16}", value), f".env.example: {name} holds an access key"
        assert not re.search(r"(?=[A-Za-z0-9+/_]*\d)(?=[A-Za-z0-9+/_]*[A-Za-z])[A-Za-z0-9+/_]{20,}", value), (
            f".env.example: {name} looks like a generated secret"
        )
    for service in services():
        for name, value in environment(service).items():
            if SECRET_NAME.search(name):
                assert INTERPOLATION.fullmatch(value), f"{service}: {name} must come from .env, ${{NAME:-default}}"
    for text in strings(compose()):
        masked = INTERPOLATION.sub("<from-env>", text)
        passwords = re.findall(r"://[^/:@\s]*:([^/@\s]*)@", masked) + re.findall(r"password=([^,\s]*)", masked)
        assert all(password == "<from-env>" for password in passwords), f"a password written into {text}"
    assert INTERPOLATION.fullmatch(option("redis", "--requirepass"))


def test_env_is_kept_out_of_git_and_out_of_the_image():
    ignored = subprocess.run(["git", "check-ignore", "--quiet", ".env"], cwd=REPO_ROOT, check=False)
    assert ignored.returncode == 0, ".env is not git-ignored"
    dockerignore = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ".env" in dockerignore, "the image would carry .env's passwords"


@pytest.mark.parametrize("service", CONSUMERS)
def test_the_project_processes_run_the_cli(service):
    assert command(service)[:3] == ["python", "-m", "common.app.cli"]
    assert command(service)[3] == {"train": "train", "api": "serve"}[service]
    if service == "api":
        assert option("api", "--host") == "0.0.0.0"  # inside the container; published on 127.0.0.1 only
