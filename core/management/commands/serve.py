"""`make run`: API, websockets, an in-process worker and the scheduler in one process."""

import threading

import dramatiq
import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from core import scheduler
from core.actors import discover


class Command(BaseCommand):
    help = "Serve HTTP and websockets; with INPROCESS_WORKER also run jobs in this process."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: object, host: str, port: int, **options: object) -> None:
        discover()
        worker = None
        if settings.INPROCESS_WORKER:
            worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=settings.WORKER_THREADS)
            worker.start()
            threading.Thread(target=scheduler.run_forever, name="scheduler", daemon=True).start()
            self.stdout.write(f"In-process worker: {settings.WORKER_THREADS} thread(s); "
                              "scheduler running.")
        try:
            uvicorn.run("config.asgi:application", host=host, port=port, lifespan="off",
                        log_level=settings.LOG_LEVEL.lower())
        finally:
            if worker is not None:
                worker.stop()
