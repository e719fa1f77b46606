"""`make run`: API, websockets, an in-process worker and the scheduler in one process."""

import threading

import dramatiq
import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from dramatiq.brokers.stub import StubBroker

from core import recovery, scheduler
from core.actors import discover
from core.telemetry import metrics


class Command(BaseCommand):
    help = "Serve HTTP and websockets; with INPROCESS_WORKER also run jobs in this process."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1,
                            help="web processes (production; the in-process worker needs 1)")

    def handle(self, *args: object, host: str, port: int, workers: int,
               **options: object) -> None:
        if workers > 1 and settings.INPROCESS_WORKER:
            raise CommandError("--workers > 1 needs INPROCESS_WORKER=false: the in-process "
                               "worker and its in-memory queues live in one process.")
        metrics.clear_multiprocess_dir()  # the last run's processes are gone
        worker = None
        if settings.INPROCESS_WORKER:
            # Commands send work by actor name (core.work): only a process that runs the jobs
            # imports the actors, and with them the training and inference code.
            discover()
            worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=settings.WORKER_THREADS)
            worker.start()
            # The in-process broker lost every message and lease of the process before this
            # one: find queued and running work again before the scheduler's first tick.
            recovery.sweep(lost_all=isinstance(dramatiq.get_broker(), StubBroker))
            threading.Thread(target=scheduler.run_forever, name="scheduler", daemon=True).start()
            self.stdout.write(f"In-process worker: {settings.WORKER_THREADS} thread(s); "
                              "scheduler running.")
        try:
            uvicorn.run("config.asgi:application", host=host, port=port, lifespan="off",
                        log_level=settings.LOG_LEVEL.lower(), workers=workers,
                        # uvicorn's default believes X-Forwarded-For/-Proto from 127.0.0.1,
                        # i.e. from anyone on this machine: only the configured proxies count.
                        proxy_headers=bool(settings.TRUSTED_PROXIES),
                        forwarded_allow_ips=list(settings.TRUSTED_PROXIES),
                        # Event messages are a few hundred bytes: per-socket deflate cost about
                        # 90 KiB and as much CPU per message as the rest of the send
                        # (platform/SCALING.md, Realtime).
                        ws_per_message_deflate=False)
        finally:
            if worker is not None:
                worker.stop()
