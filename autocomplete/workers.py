"""uvicorn's process supervisor, with SIGHUP meaning "reload" for every worker instead of a restart.

uvicorn's own ``Multiprocess`` answers SIGHUP by starting a new worker for each old one and
killing the old one once the new one answers its health check within
``timeout_worker_healthcheck`` (5 s): a model takes longer to load and warm, so the restart is
aborted, and a replaced worker drops its websockets. A single uvicorn process does not handle
SIGHUP at all (the default action ends it without closing anything). Here the supervisor
forwards SIGHUP to each worker, and each worker's app reloads in place
(:mod:`autocomplete.reload`); with one worker the app handles the signal itself.
"""

from __future__ import annotations

import logging
import os
import signal

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("uvicorn.error")
SUPERVISOR_ENV = "AUTOCOMPLETE_SUPERVISOR_PID"


class ReloadingMultiprocess(Multiprocess):
    """SIGHUP to the supervisor is sent on to every worker (which reloads its model and blocklist)."""

    def handle_hup(self) -> None:
        logger.info("Received SIGHUP, asking %d worker(s) to reload.", len(self.processes))
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                try:
                    os.kill(process.pid, signal.SIGHUP)
                except ProcessLookupError:  # it just died: keep_subprocess_alive replaces it
                    pass


def serve(config: Config) -> None:
    """Run ``config`` as ``uvicorn.run`` would, with :class:`ReloadingMultiprocess` for workers > 1."""
    server = Server(config=config)
    try:
        if config.workers > 1:
            os.environ[SUPERVISOR_ENV] = str(os.getpid())  # the workers' way to reach their siblings
            sock = config.bind_socket()
            ReloadingMultiprocess(config, sockets=[sock]).run()
        else:
            config.load_app()
            server.run()
    except KeyboardInterrupt:  # pragma: no cover
        pass
    if config.workers == 1 and not server.started:
        raise SystemExit(STARTUP_FAILURE)


def reload_all_workers() -> bool:
    """From a worker: SIGHUP to the supervisor, which forwards it to every worker (this one too).
    False when this process is not a supervised worker (one process: nothing else to tell)."""
    pid = os.environ.get(SUPERVISOR_ENV)
    if not pid or int(pid) != os.getppid():
        return False
    os.kill(int(pid), signal.SIGHUP)
    return True
