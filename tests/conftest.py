"""Shared fixtures: a small seeded synthetic log and model folders built from it, once per run, and
a local Redis Cluster."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from autocomplete.completer import candidate_rows
from indexer.config import load_train_config
from indexer.pipeline import build_model
from indexer.synthetic import generate_log

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def synthetic_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded synthetic session log (TSV, benchmark format) of 300 users, as the demo's."""
    return generate_log(tmp_path_factory.mktemp("logs") / "synthetic.tsv", n_users=300, seed=7)


@pytest.fixture(scope="session")
def mpc_model(synthetic_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A most-popular-completion model folder built from ``synthetic_log``."""
    config = dataclasses.replace(load_train_config(ROOT / "configs" / "demo.toml"), model="mpc")
    out = tmp_path_factory.mktemp("models") / "mpc"
    build_model(synthetic_log, config, out)
    return out


@pytest.fixture
def live_server():
    """Start real servers: ``live_server(model_folder, redis_url=None, workers=1, config=None, env=None)``
    runs ``autocomplete serve`` on a free loopback port and returns a ``ServerProcess`` (``.url``,
    ``.ws_url``, ``.output()``); every server started is stopped when the test ends."""
    from autocomplete.evaluation.server_process import ServerProcess

    started: list[ServerProcess] = []

    def start(model: Path, **kwargs) -> ServerProcess:
        server = ServerProcess(model, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def demo_model(synthetic_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full context-aware model (configs/demo.toml) built from ``synthetic_log``."""
    out = tmp_path_factory.mktemp("models") / "xmr"
    build_model(
        synthetic_log, load_train_config(ROOT / "configs" / "demo.toml"), out, candidate_rows=candidate_rows
    )
    return out


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real three-master Redis Cluster on loopback ports (``tests/cluster_support.py``), started
    once per run; skipped when redis-server or redis-cli is not installed."""
    from cluster_support import LocalCluster, cluster_tools_missing

    missing = cluster_tools_missing()
    if missing is not None:
        pytest.skip(missing)
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()
