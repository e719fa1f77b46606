"""Read models of the task stream (tasks.projections), rebuilt from events. A running attempt's
lease is a core.WorkLease (`task:<id>`, core.lifecycle), like every worker's."""

import uuid

from django.db import models

from accounts.api import TenantScopedManager

STATES = ("queued", "running", "succeeded", "failed", "stopped", "interrupted")
ACTIVE_STATES = ("queued", "running")
STAGES = ("preparing", "training", "evaluating", "exporting")


class Task(models.Model):
    """One version of a training job: its configuration, state and results."""

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    project_id = models.UUIDField()
    job_id = models.UUIDField()  # the first version's id: versions share it
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    scenario = models.CharField(max_length=16)
    model_name = models.CharField(max_length=64)
    train_dataset_id = models.UUIDField()
    test_dataset_id = models.UUIDField(null=True)
    output_path = models.CharField(max_length=300, blank=True, default="")
    config = models.JSONField(default=dict)  # epochs, learning_rate, batch_size, warmup_epochs
    target_metric = models.FloatField(null=True)
    metric_name = models.CharField(max_length=16)
    max_duration_s = models.PositiveIntegerField()
    billing_mode = models.CharField(max_length=8)
    spec_id = models.UUIDField()
    spec_name = models.CharField(max_length=64)
    state = models.CharField(max_length=12)
    stage = models.CharField(max_length=12, blank=True, default="")
    stop_reason = models.CharField(max_length=32, null=True)
    stop_requested = models.CharField(max_length=32, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    attempt = models.PositiveIntegerField(default=0)
    node = models.CharField(max_length=200, blank=True, default="")
    progress = models.FloatField(default=0.0)
    epoch = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    elapsed_s = models.FloatField(default=0.0)
    eta_s = models.FloatField(null=True)
    best_metric = models.FloatField(null=True)
    resources = models.JSONField(default=dict)
    warnings = models.JSONField(default=list)
    model_id = models.UUIDField(null=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    last_position = models.BigIntegerField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="task_tenant_created"),
                   models.Index(fields=["job_id", "version"], name="task_job_version"),
                   models.Index(fields=["state"], name="task_state")]

    def __str__(self) -> str:
        return f"{self.name} V{self.version:03d}"

    @property
    def version_label(self) -> str:
        return f"V{self.version:03d}"


class TaskMetric(models.Model):
    """One point of a metric series: a metric's value at the end of an epoch."""

    id = models.BigIntegerField(primary_key=True)  # event position * 64 + index
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    task_id = models.UUIDField()
    epoch = models.PositiveIntegerField()
    name = models.CharField(max_length=32)
    value = models.FloatField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["task_id", "name", "epoch"], name="metric_task_name")]

    def __str__(self) -> str:
        return f"{self.name}@{self.epoch}={self.value}"


class TaskTemplate(models.Model):
    """A task's parameters saved for reuse (stream "task_template")."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    name = models.CharField(max_length=100)
    parameters = models.JSONField(default=dict)
    source_task_id = models.UUIDField(null=True)
    created_at = models.DateTimeField()

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return self.name
