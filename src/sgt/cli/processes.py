"""`sgt serve`: the API processes (uvicorn) and, by default, one trainer process beside them.

The trainer runs in its own process so that training never starves inference of the GIL; it
shares nothing with the API but the database. Both are rebuilt from SGT_* variables, so the
children see exactly the settings the parent resolved.

`sgt serve` supervises its trainer (`TrainerSupervisor`): a trainer that exits while the server
runs is restarted after a back-off (doubling from 1 s to 60 s, reset once a trainer has run for
a minute), and each restart is logged and counted; the count reaches the new trainer's row in
the database (`--restarts`), and from there /metrics and `sgt admin trainers`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from sgt.config import Settings, settings_to_environment
from sgt.services.context import open_context

log = logging.getLogger("sgt.serve")


def serve_forever(settings: Settings) -> None:
    """Migrate, make sure a system key exists, start the trainer, then serve until stopped."""
    import uvicorn

    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    if not settings.is_embedded_database and not settings.system_key:
        log.warning(
            "SGT_SYSTEM_KEY is not set: this server uses a key generated into %s, which other "
            "servers on the same database do not share; set one key on every server",
            settings.data_dir,
        )
    ctx = open_context(settings)  # migrates once here, before any child starts
    settings = settings.model_copy(update={"system_key": ctx.system_key})
    ctx.close()
    os.environ.update(settings_to_environment(settings))
    trainer = TrainerSupervisor(settings) if settings.embedded_trainer else None
    if trainer is not None:
        trainer.start()
    # uvicorn re-raises the signal that stopped it once it has shut down; with the default
    # handler that would kill this process before the trainer below is stopped and waited for.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    try:
        uvicorn.run(
            "sgt.api.app:create_app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.api_workers if settings.api_workers > 1 else None,
            log_level=settings.log_level.lower(),
            http="httptools",
            loop="uvloop",
            timeout_keep_alive=60,
            access_log=False,
            # uvicorn would take X-Forwarded-For from loopback peers as the client address;
            # SGT decides that itself (SGT_TRUST_FORWARDED_FOR), so throttling cannot be dodged.
            proxy_headers=False,
        )
    finally:
        if trainer is not None:
            trainer.stop()


EMBEDDED_TRAINER_NICENESS = 10
RESTART_FIRST_DELAY_SECONDS = 1.0
RESTART_MAX_DELAY_SECONDS = 60.0
# A trainer that ran this long before it exited was healthy: the next delay starts over.
RESTART_HEALTHY_RUN_SECONDS = 60.0


class TrainerSupervisor:
    """Keeps one embedded trainer running beside the API until `stop()`.

    `start_process(restarts)` starts a trainer (the real `sgt worker` child unless a test passes
    its own); a test shortens the back-off with `first_delay_seconds`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        start_process: Callable[[int], subprocess.Popen[bytes]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        first_delay_seconds: float = RESTART_FIRST_DELAY_SECONDS,
    ) -> None:
        self._start_process = start_process or (
            lambda restarts: start_trainer_process(settings, restarts=restarts)
        )
        self._clock = clock
        self._first_delay_seconds = first_delay_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._supervise, name="trainer-supervisor")
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        with self._lock:
            return None if self._process is None else self._process.pid

    def start(self) -> None:
        with self._lock:
            self._process = self._start_process(0)
        self._thread.start()

    def stop(self) -> None:
        """Stop supervising, then stop the trainer (SIGTERM; it hands its model back)."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None:
            stop_process(process)
        if self._thread.is_alive():
            self._thread.join()

    def _supervise(self) -> None:
        delay = self._first_delay_seconds
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            assert process is not None
            started = self._clock()
            code = process.wait()
            if self._stopping.is_set():
                return
            if self._clock() - started >= RESTART_HEALTHY_RUN_SECONDS:
                delay = self._first_delay_seconds
            self.restarts += 1
            log.error(
                "the embedded trainer exited with %s; restarting it in %.1f s (restart %d)",
                code,
                delay,
                self.restarts,
            )
            if self._stopping.wait(delay):
                return
            delay = min(RESTART_MAX_DELAY_SECONDS, delay * 2)
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = self._start_process(self.restarts)


def start_trainer_process(settings: Settings, *, restarts: int = 0) -> subprocess.Popen[bytes]:
    """`sgt worker` as a child that dies with this process.

    It runs at a lower priority, and with one torch thread unless configured otherwise: beside
    the API on a small machine, torch's spinning intra-op threads made training 14x slower
    (bench/trainer.py) and cost inference its latency.
    """
    log.info("starting the embedded trainer")
    environment = dict(os.environ)
    if settings.torch_threads == 0:
        environment["SGT_TORCH_THREADS"] = "1"
    _load_prctl()  # in the parent: the child between fork and exec only calls it
    return subprocess.Popen(  # noqa: PLW1509 - Linux only; the hook takes no lock (see above)
        [sys.executable, "-m", "sgt", "worker", "--restarts", str(restarts)],
        env=environment,
        preexec_fn=_start_trainer_child,
    )


def stop_process(process: subprocess.Popen[bytes], timeout_seconds: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_prctl: list[Callable[..., int]] = []


def _load_prctl() -> None:
    """Resolve libc's prctl once, before any fork: a restart forks while other threads run, and
    loading a library in the child could wait on a lock one of them held."""
    if _prctl:
        return
    try:
        import ctypes

        _prctl.append(ctypes.CDLL("libc.so.6", use_errno=True).prctl)
    except OSError:
        pass


def _start_trainer_child() -> None:
    os.nice(EMBEDDED_TRAINER_NICENESS)
    # PR_SET_PDEATHSIG: the kernel sends SIGTERM to the trainer if `sgt serve` dies abruptly.
    # It follows the thread that forked: the supervisor's, which lives as long as the server.
    for prctl in _prctl:
        prctl(1, signal.SIGTERM)
