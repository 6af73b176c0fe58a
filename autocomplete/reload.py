"""Hot reload: a new model folder taken into service without a restart, by every worker.

``autocomplete serve --model PATH`` keeps ``PATH`` as given, usually a ``current`` symlink that a
deployment swaps atomically (``ln -sfn new current.new && mv -T current.new current``). A reload
is asked for by the poll (:func:`watch`: the symlink's target or its ``params.json`` changed), by
SIGHUP, or by ``POST /admin/reload``. The folder is then verified and copied
(:func:`indexer.manifest.snapshot`), loaded and JIT-warmed in a background thread while the old
model keeps answering, and swapped into the :class:`~autocomplete.holder.ModelHolder` between
two keystrokes. A folder that fails (missing, truncated or changed file) is refused with the
error naming the file, logged and counted; the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import indexer
from autocomplete.completer import Completer, load_completer
from autocomplete.exclusions import LiveExclusions
from autocomplete.holder import ModelHolder, freeze_heap
from autocomplete.live import LiveView
from autocomplete.metrics import ServiceMetrics
from indexer.errors import AutocompleteError, ModelFileError
from indexer.manifest import digest

logger = logging.getLogger("autocomplete.reload")
Signature = tuple[str, int, int, int] | None


@dataclasses.dataclass(frozen=True)
class Reload:
    """What a reload did: ``loaded`` (swapped in), ``unchanged`` or ``refused`` (``error`` says why)."""

    result: str
    model_id: str
    seconds: float = 0.0
    error: str = ""


def signature(path: Path) -> Signature:
    """What identifies the folder ``path`` names now: its real path and its params.json's inode,
    modification time and size (``None`` when there is none)."""
    real = os.path.realpath(path)
    try:
        st = os.stat(os.path.join(real, "params.json"))
    except OSError:
        return None
    return (real, st.st_ino, st.st_mtime_ns, st.st_size)


class ModelReloader:
    """Loads the folder ``source`` names into ``holder`` when it changes; one reload at a time.

    Parameters
    ----------
    source : Path
        The model path as given to ``autocomplete serve`` (a folder or a symlink to one).
    holder : ModelHolder
    metrics : ServiceMetrics
    snapshot_dir : str
        ``serve.model_snapshot_dir`` (``""``: the temp dir).
    load : callable
        folder -> warmed completer (default: snapshot, load, warm up); for tests.
    seen : tuple or None
        The :func:`signature` of ``source`` taken before the model in service was loaded
        (default: taken now).
    live : LiveView or None
        The worker's live counts, handed to every model loaded (they outlive the model).
    """

    def __init__(
        self,
        source: Path,
        holder: ModelHolder,
        metrics: ServiceMetrics,
        snapshot_dir: str = "",
        load: Callable[[Path], Completer] | None = None,
        seen: Signature = None,
        live: LiveView | None = None,
    ) -> None:
        self.source = source
        self.holder = holder
        self.metrics = metrics
        self._load = load or (lambda folder: _load(folder, snapshot_dir, live))
        self._seen = seen if seen is not None else signature(source)
        self._lock = asyncio.Lock()
        # one thread: loads never overlap, and the event loop keeps the other core's worth of time
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="model-reload")
        self.retired: Completer | None = None  # the model before, kept for work that still holds it

    async def reload(self, reason: str, *, force: bool = False) -> Reload:
        """Load the folder ``source`` names if it is not the model in service.

        Without ``force`` (the poll) nothing is read unless the folder's :func:`signature`
        changed; with it (SIGHUP, the admin endpoint) its params.json is compared by digest."""
        async with self._lock:
            current = self.holder.current
            seen = signature(self.source)
            if not force and seen == self._seen:
                return Reload("unchanged", current.info["id"])
            self._seen = seen
            loop = asyncio.get_running_loop()
            start = time.perf_counter()
            try:
                if seen is None:
                    raise FileNotFoundError(
                        f"{self.source} has no params.json: point it at a model folder written by "
                        "autocomplete train"
                    )
                folder = Path(seen[0])
                new_id = (await loop.run_in_executor(self._executor, digest, folder / "params.json"))[:12]
                if new_id == current.info["id"]:
                    self.metrics.reloads.labels("unchanged").inc()
                    return Reload("unchanged", new_id)
                logger.info("loading model %s (%s)", new_id, reason)
                loaded = await loop.run_in_executor(self._executor, self._load, folder)
            except (AutocompleteError, OSError) as exc:
                return self._refused(reason, str(exc), current)
            except Exception as exc:  # a bug, or a file no check caught: refuse it, keep serving
                logger.exception("loading the new model failed")
                return self._refused(reason, f"{type(exc).__name__}: {exc}", current)
            self.retired = self.holder.swap(loaded)
            freeze_heap()
            seconds = time.perf_counter() - start
            self.metrics.reloads.labels("loaded").inc()
            self.metrics.serving(loaded.info, replaced=current.info)
            logger.info(
                "model %s in service (%s, %d labels, loaded in %.1f s; %s), replacing %s",
                loaded.info["id"],
                loaded.kind,
                loaded.info["labels"],
                seconds,
                reason,
                current.info["id"],
            )
            return Reload("loaded", loaded.info["id"], round(seconds, 3))

    def _refused(self, reason: str, error: str, current: Completer) -> Reload:
        self.metrics.reloads.labels("refused").inc()
        logger.error("new model refused (%s); model %s keeps serving: %s", reason, current.info["id"], error)
        return Reload("refused", current.info["id"], error=error)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_SNAPSHOT = (
    "import os, sys\n"
    "os.nice(19)\n"
    "from indexer.errors import ModelFileError\n"
    "from indexer.manifest import snapshot\n"
    "try:\n"
    "    print(snapshot(sys.argv[1], sys.argv[2] or None))\n"
    "except ModelFileError as exc:\n"
    "    print(exc, file=sys.stderr)\n"
    "    sys.exit(2)\n"
)


def niced_snapshot(folder: Path, snapshot_dir: str) -> Path:
    """:func:`indexer.manifest.snapshot` in a child process at the lowest CPU priority: copying and
    checksumming the folder then takes no time from the answers (nor the GIL), only idle CPU."""
    package_root = str(Path(indexer.__file__).resolve().parent.parent)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    )
    done = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT, str(folder), snapshot_dir],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if done.returncode == 2:
        raise ModelFileError(done.stderr.strip())
    if done.returncode != 0:
        raise ModelFileError(f"copying {folder} failed: {done.stderr.strip()[-500:]}")
    return Path(done.stdout.strip())


def _load(folder: Path, snapshot_dir: str, live: LiveView | None = None) -> Completer:
    """Snapshot (child process), then load (sizes checked: the child verified the copy's checksums)
    and warm up in this thread, one worker at a time. The switch interval is
    lowered meanwhile, so that the event loop's thread waits at most 0.5 ms for the GIL whenever
    the loading code holds it (5 ms by default: a keystroke could wait that long, several times)."""
    copy = niced_snapshot(folder, snapshot_dir)
    # the workers of a server load one after the other: at most one core is busy loading at a time
    with open(copy.parent / ".load.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            return load_completer(copy, warm_up=True, snapshot=True, live=live)
        finally:
            sys.setswitchinterval(interval)


async def watch(reloader: ModelReloader | None, exclusions: LiveExclusions, seconds: float) -> None:
    """Every ``seconds``: re-read the blocklist if its file changed, and reload the model if the
    folder its path names changed (two ``stat`` calls when nothing did)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            exclusions.check()
            if reloader is not None:
                await reloader.reload("the model path changed")
        except Exception:  # never let the watcher die: the next round tries again
            logger.exception("checking for a new model or blocklist failed")


async def reload_everything(
    reloader: ModelReloader | None, exclusions: LiveExclusions, reason: str
) -> Reload | None:
    """SIGHUP: the blocklist file and the model, read again whether or not they look changed."""
    exclusions.check()
    return await reloader.reload(reason, force=True) if reloader is not None else None


class Watcher:
    """The poll task (:func:`watch`, every ``seconds``; 0: none) and the SIGHUP handler of one
    worker's app, stopped by :meth:`aclose` at shutdown."""

    def __init__(self, reloader: ModelReloader | None, exclusions: LiveExclusions, seconds: float) -> None:
        self.reloader, self.exclusions = reloader, exclusions
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[Any]] = set()
        if seconds > 0:
            self._spawn(watch(reloader, exclusions, seconds))
        try:  # only the main thread of a process may (a server in a test's thread does not)
            self.loop.add_signal_handler(signal.SIGHUP, self._on_hup)
            self.on_hup = True
        except (ValueError, RuntimeError, NotImplementedError):
            self.on_hup = False

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _on_hup(self) -> None:
        logger.info("SIGHUP: reloading the blocklist and the model")
        self._spawn(reload_everything(self.reloader, self.exclusions, "SIGHUP"))

    async def aclose(self) -> None:
        if self.on_hup:
            self.loop.remove_signal_handler(signal.SIGHUP)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.reloader is not None:
            self.reloader.close()
