"""The compute catalogue. (Wallet, ledger and metering arrive with the billing issue.)"""

import uuid

from django.db import models


class ComputeSpec(models.Model):
    """A machine shape tenants can run on, with its hourly price in minor units."""

    KINDS = [("cpu", "cpu"), ("gpu", "gpu")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=3, choices=KINDS)
    gpu_model = models.CharField(max_length=64, blank=True, default="")
    gpu_count = models.PositiveSmallIntegerField(default=0)
    cpu_cores = models.PositiveSmallIntegerField()
    memory_gib = models.PositiveSmallIntegerField()
    price_per_hour = models.PositiveIntegerField(help_text="Minor units per hour.")
    currency = models.CharField(max_length=3, default="USD")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["kind", "price_per_hour", "name"]

    def __str__(self) -> str:
        return self.name
