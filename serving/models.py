"""Read models of the service stream (serving.projections), and per-minute monitoring counters
(not events: written by the web processes that answer predictions, see serving.monitoring)."""

from django.db import models

from accounts.api import TenantScopedManager

STATES = ("deploying", "running", "updating", "stopping", "stopped", "failed")


class Service(models.Model):
    """A published model: state, spec, billing, instances wanted."""

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    project_id = models.UUIDField()
    model_id = models.UUIDField()
    name = models.CharField(max_length=100)
    spec_id = models.UUIDField()
    spec_name = models.CharField(max_length=64)
    billing_mode = models.CharField(max_length=8)
    max_runtime_s = models.PositiveIntegerField()
    instance_count = models.PositiveSmallIntegerField()
    options = models.JSONField(default=dict)
    state = models.CharField(max_length=12)
    meter_id = models.CharField(max_length=40, blank=True, default="")
    key_prefix = models.CharField(max_length=16, blank=True, default="")
    stop_reason = models.CharField(max_length=32, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    running_at = models.DateTimeField(null=True)
    stopped_at = models.DateTimeField(null=True)
    last_position = models.BigIntegerField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="service_tenant_created"),
                   models.Index(fields=["state"], name="service_state")]

    def __str__(self) -> str:
        return f"service {self.name} ({self.id})"


class ServiceInstance(models.Model):
    """One instance of a service: a worker holding the model."""

    id = models.CharField(primary_key=True, max_length=48)  # "<service id>:<number>"
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    service_id = models.UUIDField(db_index=True)
    number = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=12)  # starting, ready, exited
    node = models.CharField(max_length=200, blank=True, default="")
    model_id = models.UUIDField(null=True)
    started_at = models.DateTimeField()
    ready_at = models.DateTimeField(null=True)
    exited_at = models.DateTimeField(null=True)
    exit_reason = models.CharField(max_length=32, blank=True, default="")

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return f"instance {self.id}"


class ServiceUpdate(models.Model):
    """An update record: the service moved from one model version to another."""

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    service_id = models.UUIDField(db_index=True)
    from_model_id = models.UUIDField()
    to_model_id = models.UUIDField()
    state = models.CharField(max_length=12)  # updating, done, abandoned
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return f"update {self.id} of service {self.service_id}"


class ServiceKey(models.Model):
    """The service's prediction key, stored as a digest (one per service; reissuing replaces)."""

    service_id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField()

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return f"key {self.prefix}… of service {self.service_id}"


class ServiceMinute(models.Model):
    """Requests of one service in one minute: counts and a latency histogram (ms buckets)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    service_id = models.UUIDField()
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # answered 4xx/5xx other than throttled
    throttled = models.PositiveIntegerField(default=0)  # answered 429
    latency_ms_sum = models.FloatField(default=0.0)
    latency_buckets = models.JSONField(default=list)  # counts per serving.monitoring.BOUNDS_MS

    objects = TenantScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service_id", "minute"],
                                               name="service_minute_unique")]

    def __str__(self) -> str:
        return f"{self.service_id} at {self.minute}"
