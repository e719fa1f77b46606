"""Billing fixtures: specs with easy prices, funded wallets, a fixed clock."""

from datetime import UTC, datetime, timedelta

import pytest

from billing import wallet
from billing.models import ComputeSpec

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def gpu(db: None) -> ComputeSpec:
    """3,600 minor units an hour: one unit per second; a postpaid start freezes 7,200."""
    return ComputeSpec.objects.create(name="test-gpu", kind="gpu", gpu_model="T4", gpu_count=1,
                                      cpu_cores=4, memory_gib=16, price_per_hour=3600)


@pytest.fixture
def cpu(db: None) -> ComputeSpec:
    """100 an hour: a second costs 1/36 of a unit, so rounding shows."""
    return ComputeSpec.objects.create(name="test-cpu", kind="cpu", cpu_cores=2, memory_gib=4,
                                      price_per_hour=100)


def fund(tenant_id: object, amount: int) -> None:
    """Credit the wallet through the audited adjustment command."""
    wallet.adjust(tenant_id, amount, "test funding", "staff:test")
