"""bench-serve's own arithmetic: latency summary, server CPU of a process tree, the Markdown table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bench.serve import markdown, process_tree_cpu_seconds, summarize


def test_summary_percentiles_match_numpy() -> None:
    seconds = list(np.random.default_rng(0).exponential(0.002, size=1000))
    out = summarize(seconds, keystrokes=1200, seconds=2.0, superseded=7)
    ms = np.asarray(seconds) * 1000
    assert out["p50_ms"] == pytest.approx(np.percentile(ms, 50), abs=1e-3)
    assert out["p99_ms"] == pytest.approx(np.percentile(ms, 99), abs=1e-3)
    counts = (out["keystrokes_per_second"], out["answered_with_completions"], out["superseded"])
    assert counts == (600.0, 1000, 7)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_server_cpu_counts_the_children_of_a_process() -> None:
    burn = (
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"],
        start_new_session=True,  # its own process group, so the grandchild goes with it
    )
    try:
        deadline = time.monotonic() + 30
        while process_tree_cpu_seconds(parent.pid) < 0.3:  # the grandchild's 0.3 s of CPU count
            assert time.monotonic() < deadline, "the child's CPU time never showed up"
            time.sleep(0.05)
        assert process_tree_cpu_seconds(2**22 + 12345) == 0.0  # no such process
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_markdown_has_one_row_per_result_with_cpu_and_store_errors() -> None:
    row = summarize([0.001] * 10, 10, 1.0) | {
        "mode": "full",
        "sessions": 64,
        "server_cpu_us_per_keystroke": 101.5,
        "session_store_errors": 3,
        "load_average": 2.5,
    }
    report = {
        "model": {"folder": "m", "kind": "xmr"},
        "queries": {"log": "log.tsv", "distinct_queries_typed": 10},
        "setup": {
            "cpus": 2,
            "client_processes": 2,
            "client_compression": "deflate",
            "duration_seconds": 5,
            "key_interval_seconds": 0.15,
        },
        "runs": [{"store": "redis", "workers": 2, "results": [row, row]}],
    }
    lines = [line for line in markdown(report).splitlines() if line.startswith("| redis | 2 | full |")]
    assert lines == ["| redis | 2 | full | 64 | 10.0 | 1.0 | 1.0 | 0 | 101.5 | 3 | 2.5 |"] * 2
