import json

from bench.quality import main as bench_main


def test_bench_trains_and_scores_each_system_side_by_side(synthetic_log, tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text(
        '[log]\nnormalization = "unicode"\n[privacy]\nmin_users = 2\n'
        "[eval]\nlatency_warmup = 20\nlatency_calls = 100\n"
    )
    out = tmp_path / "bench"
    argv = ["--log", str(synthetic_log), "--config", str(config), "--out", str(out), "--systems", "mpc,xmr"]
    assert bench_main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    systems = {r["system"]: r for r in report["systems"]}
    assert set(systems) == {"mpc", "xmr"}
    for r in systems.values():
        assert r["train_seconds"] > 0 and r["model_bytes"] > 0 and r["latency_ms"]["calls"] == 100
    assert systems["xmr"]["mrr"] > systems["mpc"]["mrr"]
    table = (out / "results.md").read_text()
    assert "| mpc |" in table and "| xmr |" in table
    assert (out / "mrr_by_prefix_length.png").read_bytes()[:4] == b"\x89PNG"
