"""Lifecycle commands for every system (the Makefile calls these).

python -m common.app.cli train --system ads [--scale tiny]
python -m common.app.cli serve --system ads [--port 8000]
python -m common.app.cli evaluate --system ads
python -m common.app.cli bench --system ads
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from typing import Annotated

import typer
import yaml

from common.app.config import load_config
from common.app.logs import quiet_libraries
from common.app.readme import replace_block, system_readme
from common.app.registry import get_system, system_names
from common.models.distributed import ray_cluster

log = logging.getLogger(__name__)
app = typer.Typer(help="Train, serve, evaluate and benchmark the ML system designs.", no_args_is_help=True)

SystemOption = Annotated[str, typer.Option("--system", "-s", help=f"One of: {', '.join(system_names())}")]
ScaleOption = Annotated[
    str | None, typer.Option("--scale", help="World size from the system's config (e.g. tiny, default)")
]


def _fail(message: str) -> None:
    """A clean error for the user: the reason on stderr, exit code 1, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def set_value(config: dict, override: str) -> None:
    """Apply one KEY=VALUE override: the dotted key must name an existing entry."""
    key, separator, value = override.partition("=")
    if not separator:
        raise ValueError(f"--set {override!r}: expected KEY=VALUE")
    *parents, name = key.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ValueError(f"--set {override!r}: the config has no section {part!r}")
        node = node[part]
    if name not in node:
        raise ValueError(f"--set {override!r}: the config has no key {key!r}")
    node[name] = yaml.safe_load(value)


def _check_system(system: str) -> None:
    if system not in system_names():
        raise typer.BadParameter(f"unknown system {system!r}; choose one of {system_names()}", param_hint="--system")


DataOption = Annotated[
    str | None,
    typer.Option("--data", help="Directory of real data files to train on instead of the world (game, events)"),
]


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a config value for this run, KEY=VALUE with a dotted key and a YAML value"
        " (e.g. features.text_encoder.kind=lsa); repeatable",
    ),
]


WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Over 1: train the torch models (two-tower, deep CTR) data parallel on this many Ray Train workers,"
        " and embed the catalogue with Ray Data; a local Ray cluster unless RAY_ADDRESS names one",
    ),
]


@app.command()
def train(
    system: SystemOption,
    scale: ScaleOption = None,
    data: DataOption = None,
    overrides: SetOption = None,
    workers: WorkersOption = 1,
) -> None:
    """Generate the world (or read --data), build features into Feast, train and evaluate every
    model, track them in MLflow and register the best as <system>-ranker@champion."""
    _check_system(system)
    quiet_libraries()
    config = load_config(system, scale)
    for override in overrides or []:
        try:
            set_value(config, override)
        except ValueError as error:
            _fail(str(error))
    if data is not None:
        if not get_system(system).accepts_data:
            _fail(
                f"{system} trains on its synthetic world only; --data is for: "
                + ", ".join(n for n in system_names() if get_system(n).accepts_data)
            )
        if not os.path.isdir(data):
            _fail(f"--data {data!r} is not a directory")
        config["data"] = data
    config["workers"] = workers if workers > 1 else None  # None: this process, no Ray
    log.info("%s: training starts (the world or the data first)", system)
    try:
        with ray_cluster() if workers > 1 else nullcontext():  # one cluster for every fit of the training
            summary = get_system(system).train(config)
    except (FileNotFoundError, ValueError) as error:  # unreadable data files, too few days for the split
        _fail(str(error))
    typer.echo(f"\nTest set ({system}, scale {load_config(system, scale)['scale']}):\n{summary['table']}")
    typer.echo(
        f"champion: {summary['champion']} -> {system}-ranker version {summary['champion_version']}"
        f" (pipeline {summary['pipeline_seconds']:.0f}s)"
    )


@app.command()
def serve(
    system: SystemOption,
    scale: ScaleOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes; one per core sidesteps the GIL")] = 2,
) -> None:
    """Serve the system's endpoint with uvicorn; trains first if no champion is registered."""
    _check_system(system)
    quiet_libraries()
    from common.tracking.runs import champion_exists

    if not champion_exists(system):
        typer.echo(f"no {system}-ranker@champion yet: training first")
        get_system(system).train(load_config(system, scale))
    import uvicorn

    os.environ["MLSD_SYSTEMS"] = system
    if scale:
        os.environ["MLSD_SCALE"] = scale
    typer.echo(f"serving {system} on http://{host}:{port} ({workers} workers); docs at /docs")
    uvicorn.run(
        "common.serving.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning"
    )


WriteReadmeOption = Annotated[
    bool, typer.Option("--write-readme", help="Also put the result in systems/<system>/README.md")
]


@app.command()
def evaluate(system: SystemOption, write_readme: WriteReadmeOption = False) -> None:
    """Print the test table (each model, the LR baseline, the oracle) of the latest training."""
    _check_system(system)
    quiet_libraries()
    from common.tracking.runs import ChampionMissing, latest_results_table

    try:
        table = latest_results_table(system)
    except ChampionMissing as error:
        _fail(str(error))
    typer.echo(table)
    if write_readme:
        replace_block(system_readme(system), "test-table", table)


@app.command()
def bench(
    system: SystemOption,
    url: Annotated[
        str, typer.Option(help="Base URL of a running server; one is started when none answers")
    ] = "http://127.0.0.1:8000",
    requests: Annotated[int, typer.Option(help="Requests per concurrency level")] = 1000,
    k: Annotated[int, typer.Option(help="k of each request")] = 10,
    soak: Annotated[
        float, typer.Option(min=0, help="Seconds to hold concurrency 8 instead: errors, and whether memory grows")
    ] = 0,
    write_readme: WriteReadmeOption = False,
) -> None:
    """Drive the endpoint over loopback: p50/p99 of the request and of each stage at
    concurrency 1 and 8, requests per second, the server's resident memory. With --soak: concurrency 8
    for that long, and the trend of the server's memory (common/bench/soak.py)."""
    _check_system(system)
    quiet_libraries()
    from common.bench.endpoint import run_benchmark
    from common.bench.soak import run_soak

    if soak and write_readme:
        _fail("--soak reports a leak check, not the README's benchmark: drop --write-readme")
    try:
        report = run_soak(system, url, soak, k=k) if soak else run_benchmark(system, url, n_requests=requests, k=k)
    except RuntimeError as error:  # no server, or it cannot serve yet: the message says what to run
        _fail(str(error))
    typer.echo(report)
    if write_readme:
        replace_block(system_readme(system), "bench", f"```\n{report}\n```")


DaysOption = Annotated[
    int | None, typer.Option("--days", min=1, help="Simulated days (default: the config's online.days)")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the simulated arrivals and reactions")]


def _online_system(system: str, scale: str | None) -> tuple[dict, object]:
    """The config and the system on the online simulator, or a clean error saying what to run."""
    from common.tracking.runs import ChampionMissing, champion_trained_on

    _check_system(system)
    quiet_libraries()
    if get_system(system).online is None:
        _fail(f"{system} has no online simulation yet; systems with one: {', '.join(_online_systems())}")
    config = load_config(system, scale)
    # The simulator's users are the world's at the config's scale: a model of the public data, or of a world of
    # another size, knows none of its users or items.
    trained_on = champion_trained_on(system)
    if "data" in trained_on:
        _fail(
            f"the {system} champion was trained on the data in {trained_on['data']}; the simulator stands in"
            f" for the world's users only: run make train SYSTEM={system} (without DATA) first"
        )
    if trained_on.get("scale", config["scale"]) != config["scale"]:
        _fail(
            f"the {system} champion was trained at scale {trained_on['scale']}, the simulation asks for"
            f" {config['scale']}: run make train SYSTEM={system} SCALE={config['scale']}, or pass"
            f" SCALE={trained_on['scale']}"
        )
    try:
        return config, get_system(system).online(config)
    except ChampionMissing as error:
        _fail(f"{error}: run make train SYSTEM={system}")


def _online_systems() -> list[str]:
    return [name for name in system_names() if get_system(name).online is not None]


def _report_online(
    system: str, scale: str | None, days: int | None, seed: int, write_readme: bool, kind: str, make, params=None
) -> None:
    """Run one of the simulator's reports (`make(system, online_system, config, days)`), log it to MLflow, print
    it and, with --write-readme, put it in the system's README block named `kind`."""
    from common.online.report import log_report

    config, online_system = _online_system(system, scale)
    days = days or config["online"]["days"]
    try:
        report = make(system, online_system, config, days)
    except ValueError as error:  # an unknown policy, a system without the offline metric
        _fail(str(error))
    log_report(system, kind, report, {**(params or {}), "days": days, "seed": seed, "scale": config["scale"]})
    typer.echo(report.text)
    if write_readme:
        replace_block(system_readme(system), kind, report.text)


@app.command()
def online(
    system: SystemOption,
    scale: ScaleOption = None,
    days: DaysOption = None,
    seed: SeedOption = 0,
    write_readme: WriteReadmeOption = False,
) -> None:
    """The champion, a simple baseline and the oracle policy on the online simulator: the chapter's online
    metrics of each, on the same simulated days; logged to MLflow."""
    from common.online.report import online_report

    def make(system, online_system, config, days):
        return online_report(system, online_system, days, seed)

    _report_online(system, scale, days, seed, write_readme, "online", make)


@app.command()
def abtest(
    system: SystemOption,
    a: Annotated[str, typer.Option("--a", help="The control policy: champion, a model of the latest training...")],
    b: Annotated[str, typer.Option("--b", help="The treatment policy")],
    scale: ScaleOption = None,
    days: DaysOption = None,
    seed: SeedOption = 0,
    write_readme: WriteReadmeOption = False,
) -> None:
    """An A/B test of two policies on the online simulator: planned sample size, each metric's difference with
    its confidence interval, the sample ratio check; logged to MLflow."""
    from common.online.report import abtest_report

    def make(system, online_system, config, days):
        return abtest_report(system, online_system, a, b, days, seed, config["online"]["plan"])

    _report_online(system, scale, days, seed, write_readme, "abtest", make, {"a": a, "b": b})


@app.command("offline-vs-online")
def offline_vs_online(
    system: SystemOption,
    scale: ScaleOption = None,
    days: DaysOption = None,
    seed: SeedOption = 0,
    write_readme: WriteReadmeOption = False,
) -> None:
    """Every model of the latest training on the online simulator at once: whether the offline metric that
    chose the champion orders the models as the online metric does; logged to MLflow."""
    from common.online.report import offline_vs_online_report

    def make(system, online_system, config, days):
        return offline_vs_online_report(system, online_system, days, seed)

    _report_online(system, scale, days, seed, write_readme, "offline-vs-online", make)


@app.command()
def continual(
    system: SystemOption,
    scale: ScaleOption = None,
    days: DaysOption = None,
    seed: SeedOption = 0,
    write_readme: WriteReadmeOption = False,
) -> None:
    """Continual training on the online simulator against a frozen champion: each day served, A/B-tested,
    monitored, retrained and gated; the winner promoted through the registry alias; logged to MLflow."""
    from common.online.continual import run_continual

    config, online_system = _online_system(system, scale)
    if online_system.learner is None:
        _fail(f"{system} has no continual training on the simulator yet")
    days = days or config["online"]["continual"]["days"]
    result = run_continual(system, online_system, online_system.learner(), days, seed, f"{system}-continual")
    typer.echo(result.text)
    if write_readme:
        replace_block(system_readme(system), "continual", result.text)


if __name__ == "__main__":
    app()
