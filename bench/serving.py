"""A prediction service under 32 concurrent HTTP clients, against raw batched `model(x)`, same run.

Issue 9: "32 concurrent clients against one instance on this machine: throughput against raw
batched `model(x)` on the same images in the same run (goal >= 0.8 x), and p50/p99 latency
overhead over a single forward pass (goal p50 <= 20 ms)."

A classification artifact (registry resnet18 at 112x112, 10 labels, random weights: a forward
pass that is not trivially small on a CPU, yet a run of about a minute or two) is exported as
training exports it (program "auto": a torch.export program), stored as a TrainedModel row and
published through the API. Two shapes (--shape):
  - worker (default, production): this file run with --serve is `manage.py serve` (uvicorn,
    no in-process worker) and with --work a dramatiq worker process on the `serving` queue, as
    compose's worker-serving; Redis (--redis-url, a database of its own) is the broker and the
    serving transport;
  - inprocess (`make run`): `manage.py serve` alone, its in-process worker running the
    instance, the in-memory transport.
The process that runs the instance wraps its `answer` and its model to record each
micro-batch: size, time in answer() (decoding, the forward pass, results), time in model(x)
split by the thread's own clock (/proc/thread-self/schedstat: on a CPU, waiting for a CPU,
and the rest asleep, i.e. waiting for the GIL or OpenMP workers; exact to a scheduler tick).
SQLite, local disk, in a scratch folder under DATA_DIR, removed at the end; DEBUG off.
This process drives it over real HTTP with `http.client`, one keep-alive connection per client
thread, the service key as credentials, JSON base64 bodies (JPEGs at the input size, encoded
once beforehand). Anchors in this process, on the same images, same torch thread count:
  - raw `model(x)` (the very module the Predictor runs) on preprocessed, stacked batches of
    SERVING_MAX_BATCH;
  - `Predictor.predict` on the same batches of JPEG bytes (decode, preprocess, softmax and
    top-k included, as in the instance);
  - a single-image forward pass (batch 1): its p50 is the latency anchor.
Each round: 32 clients send --requests predictions each, back to back (throughput = answered /
wall); then one client alone (a request that waits for nobody but the batch window); then the
anchors again, so that each round's ratio is against the anchors just before and after it (the
box is noisy; medians of the rounds are shown). CPU seconds of the server processes per request
beside the anchors' CPU per image are the figures noise moves least. Under 32 closed-loop
clients a request also waits for the batches ahead of it, so that latency is also shown beside
its ideal, 32 / the raw anchor's rate. No assertions: figures to read.

Usage: DATA_DIR=/tmp/h-sbench .venv/bin/python bench/serving.py [--model resnet18] [--size 112]
       [--program auto] [--clients 32] [--requests 10] [--single 30] [--rounds 3] [--threads N]
       [--shape worker|inprocess] [--redis-url redis://127.0.0.1:6379/13]
"""

import argparse
import http.client
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, free_port, wait  # noqa: E402

HOST = "127.0.0.1"
STATS = "server-batches.json"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LABELS = [f"class{i}" for i in range(10)]


def thread_clock() -> tuple[float, float, float]:
    """This thread's (wall, on a CPU, waiting for a CPU) seconds: what is left of the wall time
    it slept (waiting for the GIL, or for OpenMP workers)."""
    on_cpu, queued, _ = Path("/proc/thread-self/schedstat").read_text().split()
    return time.perf_counter(), int(on_cpu) / 1e9, int(queued) / 1e9


# --- the server process ---------------------------------------------------------------------


def instrument() -> list[tuple[float, ...]]:
    """Set Django up and wrap the instance's answer() and model to record each micro-batch:
    (wall clock, size, seconds in answer(), in model(x): wall, on a CPU, waiting for a CPU)."""
    import django

    django.setup()
    from serving import instance

    if os.environ.get("BENCH_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))
    batches: list[tuple[float, ...]] = []
    forward = [0.0, 0.0, 0.0]  # inside model(x) since the last batch was recorded
    answer, load = instance.answer, instance._load

    def timed_load(model_id: str, into: Path) -> Any:
        predictor = load(model_id, into)
        model = predictor.model

        def timed(x: Any) -> Any:
            before = thread_clock()
            try:
                return model(x)
            finally:
                for i, (a, b) in enumerate(zip(before, thread_clock(), strict=True)):
                    forward[i] += b - a

        predictor.model = timed
        return predictor

    def recorded(predictor: Any, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        at, started, forward[:] = time.time(), time.perf_counter(), [0.0, 0.0, 0.0]
        try:
            return answer(predictor, batch)
        finally:
            batches.append((at, len(batch), time.perf_counter() - started, *forward))

    instance._load = timed_load
    instance.answer = recorded
    return batches


def write_record(batches: list[tuple[float, ...]]) -> None:
    Path(os.environ["DATA_DIR"], STATS).write_text(json.dumps(
        {"torch_threads": torch.get_num_threads(), "batches": batches}))


def serve(port: int) -> None:
    """`manage.py serve` on `port` (in the inprocess shape its worker runs the instance)."""
    batches = instrument()
    from django.core.management import call_command

    try:
        call_command("serve", host=HOST, port=port)
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped on
        pass
    finally:
        if os.environ.get("BENCH_SHAPE") == "inprocess":
            write_record(batches)


def work() -> None:
    """A dramatiq worker process on the serving queue, as compose's worker-serving runs."""
    import dramatiq

    batches = instrument()
    from core.actors import discover

    discover()
    worker = dramatiq.Worker(dramatiq.get_broker(), queues={"serving"}, worker_threads=1)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    stop.wait()
    worker.stop(timeout=30_000)
    write_record(batches)


# --- this process: setup, anchors, clients --------------------------------------------------


def setup_django(data_dir: str, threads: int | None, shape: str, redis_url: str) -> None:
    """Settings for every process (the server and worker inherit the environment), then
    migrate. The worker shape needs Redis: the dramatiq broker and the serving transport."""
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATA_DIR": data_dir,
                       "DEBUG": "false", "LOG_LEVEL": "WARNING", "BENCH_SHAPE": shape,
                       "DATABASE_URL": f"sqlite:///{data_dir}/bench.sqlite3"})
    for name in ("REDIS_URL", "DRAMATIQ_BROKER_URL", "S3_BUCKET", "SERVING_TRANSPORT",
                 "INPROCESS_WORKER"):
        os.environ.pop(name, None)
    if shape == "worker":
        from core.services import reachable

        if not reachable(redis_url):
            raise SystemExit(f"the worker shape needs Redis at {redis_url} (--redis-url)")
        os.environ.update({"REDIS_URL": redis_url, "DRAMATIQ_BROKER_URL": redis_url})
    if threads:
        os.environ["BENCH_TORCH_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def jpegs(count: int, size: int) -> list[bytes]:
    """Photo-like JPEGs at the input size: smooth colour fields with a little noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((size, size), Image.BICUBIC), dtype=np.int16)
        noisy = np.clip(smooth + rng.integers(-12, 13, smooth.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def export(model_name: str, size: int, program: str, into: Path) -> Path:
    from training_runtime.export.artifact import export_artifact
    from training_runtime.models import build, get

    torch.manual_seed(0)
    model = build(get("classification", model_name), len(LABELS)).eval()
    return export_artifact(model, into / "artifact", scenario="classification",
                           model_name=model_name, labels=LABELS, input_size=(size, size),
                           normalization=(MEAN, STD), metrics={}, program=program)


def stored_model(tenant_id: str, project_id: str, artifact: Path, model_name: str,
                 size: int) -> str:
    """A TrainedModel row as a succeeded task leaves it, its artifact zipped in storage."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from modelregistry.models import TrainedModel

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(artifact.iterdir()):
            archive.write(file, file.name)
    model_id = uuid.uuid4()
    key = f"models/{tenant_id}/{model_id}.zip"
    default_storage.save(key, ContentFile(buffer.getvalue()))
    TrainedModel.objects.create(
        id=model_id, tenant_id=tenant_id, project_id=project_id, task_id=uuid.uuid4(),
        version=1, scenario="classification", model_name=model_name, labels=LABELS,
        metrics={}, artifact_key=key, input_size=[size, size], train_dataset_id=uuid.uuid4(),
        created_at=timezone.now())
    return str(model_id)


@dataclass
class Anchors:
    raw_s: float         # raw model(x) over every batch (wall)
    raw_cpu_s: float     # the same, CPU seconds of this process
    predictor_s: float   # Predictor.predict over every batch of JPEG bytes (wall)
    predictor_cpu_s: float
    single_ms: list[float] = field(default_factory=list)  # batch-1 forward passes
    raw_on_cpu_s: float = 0.0   # of raw_s, this thread on a CPU
    raw_queued_s: float = 0.0   # of raw_s, this thread waiting for a CPU


def measure_anchors(predictor: Any, images: list[bytes], batch: int) -> Anchors:
    """The three anchors once, on the same images, in this process."""
    groups = [images[i:i + batch] for i in range(0, len(images), batch)]
    ready = [torch.stack(predictor.preprocess(group)[0]) for group in groups]
    singles = [x[i:i + 1] for x in ready for i in range(len(x))]
    with torch.inference_mode():
        cpu, before = time.process_time(), thread_clock()
        for x in ready:
            predictor.model(x)
        raw = [b - a for a, b in zip(before, thread_clock(), strict=True)]
        raw_cpu_s = time.process_time() - cpu
        single_ms = []
        for x in singles:
            started = time.perf_counter()
            predictor.model(x)
            single_ms.append((time.perf_counter() - started) * 1000)
    cpu, started = time.process_time(), time.perf_counter()
    for group in groups:
        predictor.predict(group, top_k=5)
    return Anchors(raw[0], raw_cpu_s, time.perf_counter() - started, time.process_time() - cpu,
                   single_ms, raw[1], raw[2])


@dataclass
class Load:
    latencies_ms: list[float]
    wall_s: float
    failed: int
    span: tuple[float, float]  # wall clock, to find the server's batches of this phase
    server_cpu_s: list[float]  # per server process: web, then the worker if any
    client_cpu_s: float

    @property
    def rate(self) -> float:
        """Answered predictions a second."""
        return (len(self.latencies_ms) - self.failed) / self.wall_s


class Client:
    """One load-generating client: a keep-alive connection of the standard library's
    http.client, which costs a third of `requests`' CPU a request; the clients share this
    machine's cores with the server, so the lighter the better the server is measured."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def connect(self) -> None:
        """A fresh connection: the server closes keep-alive connections idle between rounds
        (uvicorn after 5 s), and http.client would only notice on the next send."""
        self.connection.close()
        self.connection.connect()

    def post(self, path: str, body: bytes) -> int:
        """The status of one prediction (0 when the connection failed); its body is dropped."""
        try:
            self.connection.request("POST", path, body, self.headers)
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (http.client.HTTPException, OSError) as error:
            print(f"client: {error!r}", file=sys.stderr)
            self.connection.close()  # the next request opens a new one
            return 0


def drive(sessions: list[Client], url: str, bodies: list[bytes], per_client: int,
          server: list[int]) -> Load:
    """Every session sends `per_client` predictions back to back, all starting together."""
    clients = len(sessions)
    start = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failed = [0] * clients

    def client(n: int) -> None:
        sessions[n].connect()
        start.wait()
        for i in range(per_client):
            body = bodies[(n * per_client + i) % len(bodies)]
            sent = time.perf_counter()
            status = sessions[n].post(url, body)
            latencies[n].append((time.perf_counter() - sent) * 1000)
            failed[n] += status != 200

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began_at, began = time.time(), time.perf_counter()
    server_cpu, client_cpu = [cpu_seconds(pid) for pid in server], time.process_time()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return Load([ms for mine in latencies for ms in mine], wall, sum(failed),
                (began_at, time.time()),
                [cpu_seconds(pid) - before for pid, before in zip(server, server_cpu, strict=True)],
                time.process_time() - client_cpu)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def batches_in(batches: list[list[float]], loads: list[Load]) -> tuple[list[int], ...]:
    """The server's batch sizes during these loads, then its seconds in answer() and in model(x):
    wall, on a CPU, waiting for a CPU."""
    mine = [b for b in batches if any(lo <= b[0] <= hi for lo, hi in (x.span for x in loads))]
    return ([int(b[1]) for b in mine], *(sum(b[i] for b in mine) for i in range(2, 6)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--program", default="auto", choices=("auto", "export", "torchscript",
                                                               "none"),
                        help="the artifact's program, as training exports it (auto)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=10, help="per client and round")
    parser.add_argument("--single", type=int, default=30, help="one client's requests a round")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    parser.add_argument("--shape", default="worker", choices=("worker", "inprocess"),
                        help="worker: the instance in its own dramatiq worker process, Redis "
                        "broker and transport (production); inprocess: make run's one process")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)  # the server
    parser.add_argument("--work", action="store_true", help=argparse.SUPPRESS)  # the worker
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.work:
        work()
        return

    import shutil

    base = Path(os.environ.get("DATA_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="bench-serving-", dir=base)
    try:
        run(args, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace, data_dir: str) -> None:
    setup_django(data_dir, args.threads, args.shape, args.redis_url)
    import requests
    from django.conf import settings

    from billing import wallet
    from billing.models import ComputeSpec
    from serving.transport import encode_image
    from training_runtime.predict import Predictor

    port = free_port()
    api = f"http://{HOST}:{port}/api/v1"
    log = Path(data_dir, "server.log").open("wb")  # noqa: SIM115  (closed below)
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    processes = [server]
    if args.shape == "worker":
        processes.append(subprocess.Popen([sys.executable, __file__, "--work"], cwd=ROOT,
                                          stdout=log, stderr=subprocess.STDOUT))
    http = requests.Session()
    http.trust_env = False  # no proxy for the local server
    service_id = None
    try:
        def up() -> bool:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("the server or worker exited; see its log")
            try:
                return http.get(f"{api}/health/", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait(up, 120, "the server to answer")
        account = http.post(f"{api}/auth/signup/", json={
            "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
            "password": "a long bench password", "tenant": "Bench"}).json()
        http.headers["Authorization"] = f"Bearer {account['token']}"
        tenant_id = account["tenant"]["id"]
        wallet.adjust(tenant_id, 10_000_000, "bench funds", "staff:bench")
        spec = ComputeSpec.objects.create(name=f"bench-serve-{uuid.uuid4().hex[:6]}", kind="cpu",
                                          cpu_cores=2, memory_gib=4, price_per_hour=100)
        project = http.post(f"{api}/projects/", json={"name": "bench"}).json()
        artifact = export(args.model, args.size, args.program, Path(data_dir))
        model_id = stored_model(tenant_id, project["id"], artifact, args.model, args.size)
        published = http.post(f"{api}/services/", json={
            "model": model_id, "name": "bench", "spec": str(spec.id)})
        assert published.status_code == 201, published.text
        service_id = published.json()["id"]

        def running() -> bool:
            state = http.get(f"{api}/services/{service_id}/").json()
            if state["state"] == "failed":
                raise RuntimeError(f"the service failed: {state['failure']}")
            return state["state"] == "running"

        wait(running, 120, "the service to run")

        images = jpegs(args.images, args.size)
        bodies = [json.dumps({"image": encode_image(image), "top_k": 5}).encode()
                  for image in images]
        sessions = [Client(port, published.json()["key"]) for _ in range(args.clients)]
        predict_url = f"/api/v1/services/{service_id}/predict/"
        pids = [p.pid for p in processes]  # the server's CPU: web and worker
        predictor = Predictor.load(artifact, "cpu")
        batch = settings.SERVING_MAX_BATCH

        for _ in range(2):  # warm-up: kernels, allocator; connections and threads
            measure_anchors(predictor, images, batch)
            drive(sessions, predict_url, bodies, 2, pids)
        anchors = [measure_anchors(predictor, images, batch)]  # before and after every round
        crowd: list[Load] = []
        alone: list[Load] = []
        for n in range(args.rounds):
            crowd.append(drive(sessions, predict_url, bodies, args.requests, pids))
            alone.append(drive(sessions[:1], predict_url, bodies, args.single, pids))
            anchors.append(measure_anchors(predictor, images, batch))
            print(f"round {n + 1}: {crowd[-1].rate:.1f} req/s, raw anchor before/after "
                  f"{len(images) / anchors[-2].raw_s:.1f}/{len(images) / anchors[-1].raw_s:.1f} "
                  "images/s", flush=True)

        http.post(f"{api}/services/{service_id}/stop/")
        wait(lambda: http.get(f"{api}/services/{service_id}/").json()["state"] == "stopped",
             60, "the service to stop")
        service_id = None
    finally:
        if service_id is not None:  # something failed midway: still let the instance leave
            http.post(f"{api}/services/{service_id}/stop/")
            time.sleep(2)
        for process in processes:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        if any(p.returncode not in (0, -signal.SIGINT) for p in processes):
            print(Path(data_dir, "server.log").read_text()[-4000:], file=sys.stderr)

    record = json.loads(Path(data_dir, STATS).read_text())
    form = (f"{predictor.manifest.program['kind']} program" if predictor.uses_program
            else "eager weights")
    report(args, form, images, anchors, crowd, alone, record, batch,
           settings.SERVING_BATCH_WINDOW_MS)


def report(args: argparse.Namespace, form: str, images: list[bytes], anchors: list[Anchors],
           crowd: list[Load], alone: list[Load], record: dict[str, Any], batch: int,
           window_ms: float) -> None:
    n = len(images)

    def around(i: int, seconds: str) -> float:  # the anchor's rate bracketing round i
        return 2 * n / (getattr(anchors[i], seconds) + getattr(anchors[i + 1], seconds))

    raw_rate = statistics.median(n / a.raw_s for a in anchors)
    predictor_rate = statistics.median(n / a.predictor_s for a in anchors)
    single_p50 = statistics.median(pct(a.single_ms, 50) for a in anchors)
    vs_raw = [load.rate / around(i, "raw_s") for i, load in enumerate(crowd)]
    vs_predictor = [load.rate / around(i, "predictor_s") for i, load in enumerate(crowd)]
    rate = statistics.median(load.rate for load in crowd)
    crowd_ms = [ms for load in crowd for ms in load.latencies_ms]
    alone_ms = [ms for load in alone for ms in load.latencies_ms]
    answered = sum(len(load.latencies_ms) - load.failed for load in crowd)
    per_process_ms = [1000 * sum(cpu) / answered
                      for cpu in zip(*(load.server_cpu_s for load in crowd), strict=True)]
    server_cpu_ms = sum(per_process_ms)
    client_cpu_ms = 1000 * sum(load.client_cpu_s for load in crowd) / answered
    raw_cpu_ms = statistics.median(1000 * a.raw_cpu_s / n for a in anchors)
    predictor_cpu_ms = statistics.median(1000 * a.predictor_cpu_s / n for a in anchors)
    ideal_ms = args.clients / raw_rate * 1000
    crowd_sizes, crowd_busy, *crowd_forward = batches_in(record["batches"], crowd)
    alone_sizes, alone_busy, *alone_forward = batches_in(record["batches"], alone)
    anchor_forward = [statistics.median(getattr(a, f) / -(-n // batch) for a in anchors)
                      for f in ("raw_s", "raw_on_cpu_s", "raw_queued_s")]

    def split(forward: list[float], count: int) -> str:  # of model(x)'s wall time in a batch
        wall, on_cpu, queued = (1000 * x / count for x in forward)
        return (f"{wall:.1f} ms = {on_cpu:.1f} on a CPU + {queued:.1f} waiting for one + "
                f"{max(0.0, wall - on_cpu - queued):.1f} asleep")

    crowd_wall = sum(load.wall_s for load in crowd)
    failed = sum(load.failed for load in crowd + alone)

    print(f"\n{args.model} {args.size}x{args.size} ({form}), {len(LABELS)} labels, cpu, torch "
          f"threads {torch.get_num_threads()} here / {record['torch_threads']} in the server; "
          f"{n} JPEGs (~{statistics.mean(map(len, images)) / 1024:.1f} KiB); "
          f"SERVING_MAX_BATCH {batch}, window {window_ms:g} ms; {args.rounds} rounds, anchors "
          "before and after each")
    shape = ("manage.py serve (uvicorn, in-process worker, memory transport)"
             if args.shape == "inprocess" else "manage.py serve (uvicorn) and a dramatiq worker "
             "process on the serving queue (Redis broker and transport)")
    print(f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')} (anchors and server "
          "alike; compose's worker-serving sets PASSIVE)")
    print(f"HTTP: {shape}, in subprocesses; clients: http.client, one thread and keep-alive "
          "connection each, here; server CPU counts every server process")
    print(f"anchors (same images, this process; medians of {len(anchors)}):")
    print(f"  raw model(x), batch {batch:<4}        {raw_rate:8.1f} images/s   CPU "
          f"{raw_cpu_ms:5.1f} ms an image")
    print(f"  Predictor.predict, batch {batch:<4}   {predictor_rate:8.1f} images/s   CPU "
          f"{predictor_cpu_ms:5.1f} ms an image (JPEG decode, preprocess, softmax/top-k in)")
    print(f"  single forward, batch 1        p50 {single_p50:6.1f} ms")
    print(f"{args.clients} clients x {args.requests} requests a round ({failed} failed in all):")
    print(f"  throughput   {rate:8.1f} req/s = {statistics.median(vs_raw):.2f} x raw model(x), "
          f"{statistics.median(vs_predictor):.2f} x Predictor.predict (goal >= 0.8 x; medians of "
          f"the rounds vs raw: {', '.join(f'{r:.2f}' for r in vs_raw)})")
    print(f"  CPU          server {server_cpu_ms:5.1f} ms a request "
          f"(= {raw_cpu_ms / server_cpu_ms:.2f} x raw, {predictor_cpu_ms / server_cpu_ms:.2f} x "
          f"Predictor in images per CPU second), clients {client_cpu_ms:5.1f} ms a request")
    if len(per_process_ms) > 1:
        print(f"               of which web {per_process_ms[0]:5.1f} ms, worker "
              f"{per_process_ms[1]:5.1f} ms")
    print(f"  latency      p50 {pct(crowd_ms, 50):6.1f} ms, p99 {pct(crowd_ms, 99):6.1f} ms; "
          f"over one forward p50: {pct(crowd_ms, 50) - single_p50:6.1f} ms, p99 "
          f"{pct(crowd_ms, 99) - single_p50:6.1f} ms (queueing included)")
    print(f"  closed-loop ideal {ideal_ms:6.1f} ms ({args.clients} / raw rate): p50 "
          f"{pct(crowd_ms, 50) / ideal_ms:.2f} x, p99 {pct(crowd_ms, 99) / ideal_ms:.2f} x")
    if crowd_sizes:
        print(f"  instance     mean batch {statistics.mean(crowd_sizes):.1f} of {batch} "
              f"({len(crowd_sizes)} batches); inside answer() {100 * crowd_busy / crowd_wall:.0f} "
              f"% of the wall time, {1000 * crowd_busy / len(crowd_sizes):.1f} ms a batch")
        print(f"  model(x)     server {split(crowd_forward, len(crowd_sizes))} a batch")
        print(f"               anchor {split(anchor_forward, 1)} for {batch} (this thread's "
              "clock: asleep = waiting for the GIL or for OpenMP workers)")
    print(f"1 client x {args.single} requests a round:")
    print(f"  latency      p50 {pct(alone_ms, 50):6.1f} ms, p99 {pct(alone_ms, 99):6.1f} ms; "
          f"over one forward p50: {pct(alone_ms, 50) - single_p50:6.1f} ms (goal <= 20 ms), "
          f"p99 {pct(alone_ms, 99) - single_p50:6.1f} ms")
    if alone_sizes:
        print(f"  instance     mean batch {statistics.mean(alone_sizes):.1f}; "
              f"{1000 * alone_busy / len(alone_sizes):.1f} ms a batch inside answer(), model(x) "
              f"{split(alone_forward, len(alone_sizes))} (a lone request does not wait out the "
              f"{window_ms:g} ms window)")


if __name__ == "__main__":
    main()
