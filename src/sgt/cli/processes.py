"""`sgt serve`: the API processes (uvicorn) and, by default, one trainer process beside them.

The trainer runs in its own process so that training never starves inference of the GIL; it
shares nothing with the API but the database. Both are rebuilt from SGT_* variables, so the
children see exactly the settings the parent resolved.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

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
    trainer = start_trainer_process(settings) if settings.embedded_trainer else None
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
            stop_process(trainer)


EMBEDDED_TRAINER_NICENESS = 10


def start_trainer_process(settings: Settings) -> subprocess.Popen[bytes]:
    """`sgt worker` as a child that dies with this process.

    It runs at a lower priority, and with one torch thread unless configured otherwise: beside
    the API on a small machine, torch's spinning intra-op threads made training 14x slower
    (bench/trainer.py) and cost inference its latency.
    """
    log.info("starting the embedded trainer")
    environment = dict(os.environ)
    if settings.torch_threads == 0:
        environment["SGT_TORCH_THREADS"] = "1"
    return subprocess.Popen(  # noqa: PLW1509 - Linux only, called before any thread starts
        [sys.executable, "-m", "sgt", "worker"], env=environment, preexec_fn=_start_trainer_child
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


def _start_trainer_child() -> None:
    os.nice(EMBEDDED_TRAINER_NICENESS)
    # PR_SET_PDEATHSIG: the kernel sends SIGTERM to the trainer if `sgt serve` dies abruptly.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass
