"""``autocomplete eval --markdown``: the report as a Markdown table, with a plot of MRR by prefix length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autocomplete.evaluation.protocols import BUCKETS, Examples
from indexer.typos import typo_examples


def with_typos(examples: Examples, variant: str, seed: int) -> Examples:
    """The examples whose prefix has 3 characters or more, each with one keyboard typo
    (``indexer.typos``, variant A keeps the first character); the target stays the true query."""
    keep = [i for i, prefix in enumerate(examples.prefix) if len(prefix) >= 3]
    kept = examples.subset(keep)
    typoed, _ = typo_examples(list(zip(kept.previous, kept.prefix, kept.target)), variant, seed)
    return Examples(
        [p for p, _, _ in typoed],
        [x for _, x, _ in typoed],
        [t for _, _, t in typoed],
        kept.pair,
        kept.history,
    )


def markdown(report: dict[str, Any]) -> str:
    """The sampled-protocol figures of one ``eval`` report, strict MRR first."""
    rows = [("all", report)] + [(b, report["by_prefix_length"][b]) for b in BUCKETS]
    typos = f", one typo per prefix (variant {report['typos']})" if report.get("typos") else ""
    latency = report["latency_ms"]
    lines = [
        f"# {report['kind']} model `{Path(report['model']).name}`: {report['split']} split, "
        f"{report['protocol']} protocol{typos}",
        "",
        f"Strict MRR {report.get('strict_mrr', float('nan')):.4f}; "
        f"latency p50 {latency['p50']} ms, p99 {latency['p99']} ms.",
        "",
        "| prefix length | examples | MRR | BLEU | success@1 | success@10 | empty |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {m['examples']} | {m['mrr']:.4f} | {m['bleu']:.4f} | {m['success_at_1']:.4f} | "
            f"{m['success_at_10']:.4f} | {m['empty_rate']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], path: str | Path) -> None:
    """``path`` (Markdown) and beside it ``<path stem>.png``: MRR by prefix length (needs matplotlib)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(report), encoding="utf-8")
    try:
        import matplotlib
    except ImportError:  # serving installs carry no plotting library
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(BUCKETS, [report["by_prefix_length"][b]["mrr"] for b in BUCKETS], marker="o")
    ax.set_xlabel("prefix length (characters)")
    ax.set_ylabel("MRR")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=110)
    plt.close(fig)
