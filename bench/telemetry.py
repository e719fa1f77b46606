"""What telemetry costs a request, and what the readiness cache saves, same run.

1. The two telemetry middlewares (probes, then metrics by route template and the log ids) around
   a view that answers at once, against the request id middleware alone around the same view:
   CPU time per request (process time, so other load on the machine counts less).
2. A whole light request through Django's async chain (GET /api/v1/health/, as under uvicorn)
   with and without them: CPU time of the process (the view's thread too), best round of
   several, the order alternating.
3. /readyz with its verdicts cached against the checks run every call (READINESS_CACHE_S=0;
   CPU of this process, the checks' threads included), and one /metrics scrape (wall).

Goal: telemetry adds under 10% to a light request.  Usage: .venv/bin/python bench/telemetry.py
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-telemetry-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import AsyncClient, RequestFactory, override_settings  # noqa: E402
from django.urls import resolve  # noqa: E402

from core.middleware import RequestIdMiddleware  # noqa: E402
from core.telemetry.probes import ProbeMiddleware  # noqa: E402
from core.telemetry.web import TelemetryMiddleware  # noqa: E402

TELEMETRY = ("core.telemetry.probes.ProbeMiddleware", "core.telemetry.web.TelemetryMiddleware")


async def cpu_us_per_call(chain: object, request: HttpRequest, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await chain(request)
    return (time.process_time() - started) / n * 1e6


async def cpu_us_per_request(client: AsyncClient, path: str, n: int) -> float:
    started = time.process_time()  # every thread of the process: the view's too
    for _ in range(n):
        response = await client.get(path)
        assert response.status_code in (200, 503), response.status_code
    return (time.process_time() - started) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    # 1. the middlewares alone
    answer = HttpResponse(b"{}", content_type="application/json")

    async def view(request: HttpRequest) -> HttpResponse:
        return answer

    path = f"/api/v1/tasks/{uuid.uuid4()}/"
    request = RequestFactory().get(path)
    request.resolver_match = resolve(path)
    anchor = RequestIdMiddleware(view)
    telemetry = ProbeMiddleware(TelemetryMiddleware(view))
    cpu = {"request id (anchor)": [], "probes + telemetry": []}
    for _ in range(args.rounds):
        cpu["request id (anchor)"].append(await cpu_us_per_call(anchor, request, args.calls))
        cpu["probes + telemetry"].append(await cpu_us_per_call(telemetry, request, args.calls))

    # 2. whole requests, with and without them
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m not in TELEMETRY]):
        bare = AsyncClient()
        await bare.get("/api/v1/health/")  # loads the chain while the override is in force
    full = AsyncClient()
    await full.get("/api/v1/health/")
    wall = {"bare chain": [], "with telemetry": [], "/readyz cached": [], "/readyz uncached": []}
    for round_ in range(args.rounds):
        pair = [("bare chain", bare), ("with telemetry", full)]
        for name, client in pair if round_ % 2 else reversed(pair):  # alternate who goes first
            wall[name].append(await cpu_us_per_request(client, "/api/v1/health/",
                                                       args.requests))
        wall["/readyz cached"].append(await cpu_us_per_request(full, "/readyz", args.requests))
        with override_settings(READINESS_CACHE_S=0):
            wall["/readyz uncached"].append(await cpu_us_per_request(full, "/readyz",
                                                                     args.requests // 4))
    started = time.perf_counter()
    scrape = await full.get("/metrics")
    scrape_ms = (time.perf_counter() - started) * 1000

    best = {name: min(values) for name, values in {**cpu, **wall}.items()}
    for name, values in {**cpu, **wall}.items():
        print(f"{name:>20}: best {best[name]:8.1f} us  "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")
    added = best["probes + telemetry"] - best["request id (anchor)"]
    print(f"middleware CPU: probes + telemetry / request id = "
          f"{best['probes + telemetry'] / best['request id (anchor)']:.2f}; "
          f"{added:.1f} us more a request = {added / best['bare chain'] * 100:.1f}% "
          f"of a whole light request ({best['bare chain']:.0f} us)  goal < 10%")
    print(f"whole request, with / without telemetry: "
          f"{best['with telemetry'] / best['bare chain']:.3f} (CPU)")
    print(f"/readyz uncached / cached: "
          f"{best['/readyz uncached'] / best['/readyz cached']:.1f}x")
    print(f"/metrics scrape: {scrape_ms:.1f} ms, {len(scrape.content)} bytes")


if __name__ == "__main__":
    asyncio.run(main())
