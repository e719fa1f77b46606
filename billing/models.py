"""The compute catalogue, and the read models projected from the wallet stream.

Every model below `ComputeSpec` except `StripeEvent` and `MeterLease` is a projection of
events (billing.projections) and is rebuilt identically from the log: primary keys come from
event ids and positions, never from sequences. `StripeEvent` (webhook de-duplication) and
`MeterLease` (heartbeats of running resources) are operational records, not money.
"""

import uuid

from django.db import models

from accounts.api import TenantScopedManager


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


class Wallet(models.Model):
    """A tenant's money: `available` + `frozen` = balance. One row per opened wallet stream."""

    tenant = models.OneToOneField("accounts.Tenant", primary_key=True, on_delete=models.CASCADE,
                                  db_constraint=False)
    currency = models.CharField(max_length=3)
    available = models.BigIntegerField(default=0)
    frozen = models.BigIntegerField(default=0)
    prepaid_fallback_to_postpaid = models.BooleanField(default=False)
    version = models.PositiveIntegerField()
    updated_at = models.DateTimeField()

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return f"wallet of {self.tenant_id}"

    @property
    def balance(self) -> int:
        return self.available + self.frozen



class Meter(models.Model):
    """The usage of one resource run (a task, an evaluation, a service) on one spec."""

    RUNNING, STOPPED = "running", "stopped"

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64)
    project_id = models.UUIDField(null=True)
    spec_id = models.UUIDField()
    spec_name = models.CharField(max_length=64)
    price_per_hour = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    mode = models.CharField(max_length=8)  # postpaid | prepaid (prepaid may switch)
    state = models.CharField(max_length=8, default=RUNNING)
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True)
    stop_reason = models.CharField(max_length=32, blank=True, default="")
    settled_seconds = models.BigIntegerField(default=0)
    prepaid_seconds = models.BigIntegerField(default=0)
    postpaid_from_seconds = models.BigIntegerField(null=True)
    charged = models.BigIntegerField(default=0)
    prepaid_value = models.BigIntegerField(default=0)
    frozen = models.BigIntegerField(default=0)

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["state", "started_at"], name="meter_state_started"),
                   models.Index(fields=["tenant", "resource_type", "resource_id"],
                                name="meter_resource")]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.resource_id} on {self.spec_name}"

    @property
    def postpaid(self) -> bool:
        return self.postpaid_from_seconds is not None



class PrepaidBalance(models.Model):
    """Unused prepaid seconds of one spec and the money they are worth."""

    id = models.CharField(primary_key=True, max_length=80)  # "<tenant>:<spec>"
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    spec_id = models.UUIDField()
    spec_name = models.CharField(max_length=64)
    seconds = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return f"{self.seconds} s of {self.spec_name}"



class LedgerEntry(models.Model):
    """One money-moving event; its postings add up to zero."""

    position = models.BigIntegerField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    event_type = models.CharField(max_length=40)
    meter_id = models.UUIDField(null=True)
    memo = models.CharField(max_length=300, blank=True, default="")
    recorded_at = models.DateTimeField()

    objects = TenantScopedManager()

    class Meta:
        ordering = ["position"]
        indexes = [models.Index(fields=["tenant", "recorded_at"], name="ledger_tenant_time")]

    def __str__(self) -> str:
        return f"{self.event_type} @{self.position}"



class Posting(models.Model):
    """One leg of a ledger entry: an amount on an account (ledger.ACCOUNTS)."""

    id = models.BigIntegerField(primary_key=True)  # entry position * 8 + leg
    entry = models.ForeignKey(LedgerEntry, on_delete=models.CASCADE, related_name="postings",
                              db_constraint=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    account = models.CharField(max_length=32)
    amount = models.BigIntegerField()
    recorded_at = models.DateTimeField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "account", "recorded_at"],
                                name="posting_account_time")]

    def __str__(self) -> str:
        return f"{self.account} {self.amount:+d}"



class UsageRecord(models.Model):
    """Usage charged by one settlement (money, or prepaid hours drawn), for finance reports."""

    position = models.BigIntegerField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    meter_id = models.UUIDField()
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64)
    project_id = models.UUIDField(null=True)
    spec_name = models.CharField(max_length=64)
    kind = models.CharField(max_length=8)  # postpaid | prepaid
    seconds = models.BigIntegerField()
    amount = models.BigIntegerField()
    recorded_at = models.DateTimeField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "recorded_at"], name="usage_tenant_time")]

    def __str__(self) -> str:
        return f"{self.seconds} s of {self.resource_type} {self.resource_id}"



class Topup(models.Model):
    """A Stripe Checkout top-up: pending until Stripe says it is paid (or failed)."""

    PENDING, PAID, FAILED = "pending", "paid", "failed"

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=8, default=PENDING)
    session_id = models.CharField(max_length=255, unique=True)
    checkout_url = models.URLField(max_length=2000, blank=True, default="")
    payment_intent = models.CharField(max_length=255, blank=True, default="")
    refunded = models.BigIntegerField(default=0)
    failure_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["payment_intent"], name="topup_payment_intent"),
                   models.Index(fields=["tenant", "created_at"], name="topup_tenant_created")]

    def __str__(self) -> str:
        return f"top-up {self.id} ({self.state})"



class StripeEvent(models.Model):
    """A Stripe event id already applied: a replayed webhook is acknowledged and ignored."""

    id = models.CharField(primary_key=True, max_length=255)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id



class MeterLease(models.Model):
    """When a running resource last said it is alive; the scheduler settles vanished ones."""

    meter_id = models.UUIDField(primary_key=True)  # not a foreign key: survives a rebuild
    last_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"meter {self.meter_id} seen {self.last_seen_at}"
