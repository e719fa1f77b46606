"""Leases on work (core.leases): one holder at a time; a stale lease may be taken over, and its
old holder then learns it lost it. Holding one from a worker: tests/core/test_lifecycle.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core import leases
from core.models import WorkLease

pytestmark = pytest.mark.django_db


def test_a_live_lease_keeps_other_claimants_out_until_it_goes_stale():
    assert leases.claim("job:1", "a", stale_after_s=60)
    assert leases.claim("job:1", "a", stale_after_s=60)  # its own: renewed
    assert not leases.claim("job:1", "b", stale_after_s=60)

    WorkLease.objects.filter(key="job:1").update(last_seen_at=timezone.now() - timedelta(
        seconds=61))
    assert leases.claim("job:1", "b", stale_after_s=60)
    assert not leases.beat("job:1", "a")  # the old holder finds out
    assert leases.beat("job:1", "b")
    leases.release("job:1", "a")  # not a's any more: nothing happens
    assert leases.last_seen(["job:1", "job:2"]).keys() == {"job:1"}
