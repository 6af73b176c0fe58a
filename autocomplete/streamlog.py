"""``autocomplete export-stream``: the stored submits as a query log in the project's TSV format.

The live store keeps the last ``serve.live_log_size`` submits (:mod:`sessions.livecounts`): the
anonymized session key, the normalized query and its time. Written as ``AnonID``, ``Query``,
``QueryTime`` (UTC, ``YYYY-MM-DD HH:MM:SS``), tab-separated with that header (gzip-compressed
for a ``.gz`` name), it is a log ``autocomplete train`` reads like the original one, so a model
can be retrained on both: ``autocomplete train --log original.tsv.gz --log stream.tsv.gz``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import io
from collections.abc import Iterable
from pathlib import Path

from sessions.livecounts import LoggedSubmit, RedisLiveCounts

HEADER = ("AnonID", "Query", "QueryTime")


def _clean(text: str) -> str:
    """One TSV field: no tab or line break can split a row (normalized queries hold none)."""
    return " ".join(text.split())


def write_log(submits: Iterable[LoggedSubmit], path: str | Path) -> int:
    """Write ``submits`` as a TSV log (gzip for ``*.gz``); returns the rows written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = gzip.open(path, "wb") if path.suffix == ".gz" else open(path, "wb")
    rows = 0
    with io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as out:
        out.write("\t".join(HEADER) + "\n")
        for submit in submits:
            query = _clean(submit.query)
            if not query:
                continue
            when = dt.datetime.fromtimestamp(submit.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"{submit.user}\t{query}\t{when}\n")
            rows += 1
    return rows


def export_stream(redis_url: str, prefix: str, path: str | Path) -> int:
    """The submits the Redis live store at ``redis_url`` (keys under ``prefix``) holds, to ``path``."""

    async def read() -> list[LoggedSubmit]:
        store = RedisLiveCounts(redis_url, prefix=prefix, socket_timeout=10.0, connect_timeout=2.0)
        try:
            return await store.export()
        finally:
            await store.close()

    return write_log(asyncio.run(read()), path)
