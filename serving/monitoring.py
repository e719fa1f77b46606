"""Per-minute monitoring of services: requests, errors, throttled, latency percentiles.

The web process that answers a prediction records it here, in memory; a flush (every
SERVING_MONITOR_FLUSH_S, from a daemon thread, and on demand) adds the counts to the minute's
row with an UPSERT-like update under a row lock, so any number of web processes add up. Latency
goes into a fixed histogram (bucket bounds grow by 25 %), so percentiles are exact to within a
bucket: p99 is the upper bound of the bucket the 99th percentile falls in, interpolated inside it.
"""

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from serving.models import ServiceMinute

BOUNDS_MS = tuple(round(1.25 ** i, 3) for i in range(50))  # 1 ms .. ~56 s; then one overflow
PERCENTILES = (50, 95, 99)


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of a latency (the last one holds everything above the bounds)."""
    for i, bound in enumerate(BOUNDS_MS):
        if latency_ms <= bound:
            return i
    return len(BOUNDS_MS)


@dataclass
class _Counts:
    tenant_id: Any
    requests: int = 0
    errors: int = 0
    throttled: int = 0
    latency_ms_sum: float = 0.0
    buckets: dict[int, int] = field(default_factory=lambda: defaultdict(int))


_lock = threading.Lock()
_pending: dict[tuple[str, datetime], _Counts] = {}
_flusher: threading.Thread | None = None


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def record(tenant_id: object, service_id: object, latency_ms: float, outcome: str) -> None:
    """Count one answered request: outcome "ok", "error" or "throttled"."""
    key = (str(service_id), _minute(timezone.now()))
    with _lock:
        counts = _pending.setdefault(key, _Counts(tenant_id))
        counts.requests += 1
        counts.errors += outcome == "error"
        counts.throttled += outcome == "throttled"
        counts.latency_ms_sum += latency_ms
        counts.buckets[bucket_of(latency_ms)] += 1
    _ensure_flusher()


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is not None and _flusher.is_alive():
        return
    with _lock:
        if _flusher is not None and _flusher.is_alive():
            return
        _flusher = threading.Thread(target=_flush_forever, name="serving-monitoring",
                                    daemon=True)
        _flusher.start()


def _flush_forever() -> None:
    from django.db import close_old_connections

    while True:
        time.sleep(settings.SERVING_MONITOR_FLUSH_S)
        try:
            flush()
        except Exception:  # never let monitoring take anything down; the next flush retries
            import logging

            logging.getLogger("serving.monitoring").exception("monitoring flush failed")
        finally:
            close_old_connections()


def _add(key: tuple[str, datetime], counts: _Counts) -> None:
    service_id, minute = key
    with transaction.atomic():
        row = (ServiceMinute.objects.unscoped().select_for_update()
               .filter(service_id=service_id, minute=minute).first())
        if row is None:
            try:
                with transaction.atomic():
                    row = ServiceMinute.objects.unscoped().create(
                        tenant_id=counts.tenant_id, service_id=service_id, minute=minute,
                        latency_buckets=[0] * (len(BOUNDS_MS) + 1))
            except IntegrityError:  # another process created it meanwhile
                row = (ServiceMinute.objects.unscoped().select_for_update()
                       .get(service_id=service_id, minute=minute))
        buckets = list(row.latency_buckets) or [0] * (len(BOUNDS_MS) + 1)
        for index, count in counts.buckets.items():
            buckets[index] += count
        row.requests += counts.requests
        row.errors += counts.errors
        row.throttled += counts.throttled
        row.latency_ms_sum += counts.latency_ms_sum
        row.latency_buckets = buckets
        row.save()


def flush() -> int:
    """Write what was recorded since the last flush; returns how many minute rows it touched."""
    with _lock:
        taken = dict(_pending)
        _pending.clear()
    for key, counts in taken.items():
        _add(key, counts)
    return len(taken)


def percentile(buckets: list[int], q: float) -> float | None:
    """The q-th percentile of a histogram (None when empty)."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q / 100 * total
    seen = 0
    for i, count in enumerate(buckets):
        if count and seen + count >= rank:
            low = BOUNDS_MS[i - 1] if i > 0 else 0.0
            high = BOUNDS_MS[i] if i < len(BOUNDS_MS) else BOUNDS_MS[-1]
            return round(low + (high - low) * (rank - seen) / count, 3)
        seen += count
    return BOUNDS_MS[-1]


def summaries(rows: Iterable[ServiceMinute]) -> list[dict[str, Any]]:
    """Minute rows as monitoring shows them, with latency percentiles."""
    out = []
    for row in rows:
        answered = row.requests
        out.append({
            "minute": row.minute.isoformat().replace("+00:00", "Z"), "requests": answered,
            "errors": row.errors, "throttled": row.throttled,
            "latency_ms": {"mean": round(row.latency_ms_sum / answered, 3) if answered else None,
                           **{f"p{q}": percentile(row.latency_buckets, q)
                              for q in PERCENTILES}}})
    return out


def minutes(tenant_id: object, service_id: object, since: datetime) -> list[dict[str, Any]]:
    """The service's minutes from `since` (oldest first)."""
    return summaries(ServiceMinute.objects.for_tenant(tenant_id)
                     .filter(service_id=service_id, minute__gte=_minute(since))
                     .order_by("minute"))


def window(minutes_back: int) -> datetime:
    """The start of the last `minutes_back` minutes."""
    return timezone.now() - timedelta(minutes=minutes_back)
