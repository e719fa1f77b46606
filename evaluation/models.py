"""Read model of the evaluation stream (evaluation.projections), rebuilt from events."""

from django.db import models

from accounts.api import TenantScopedManager

STATES = ("queued", "running", "succeeded", "failed", "stopped", "interrupted")


class Evaluation(models.Model):
    """One evaluation run: a model on a dataset, its state, summary and metrics."""

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    project_id = models.UUIDField()
    model_id = models.UUIDField()
    task_id = models.UUIDField(null=True)  # the task that trained the model
    dataset_id = models.UUIDField()
    scenario = models.CharField(max_length=16)
    options = models.JSONField(default=dict)  # iou, score_threshold, validation settings
    spec_id = models.UUIDField()
    spec_name = models.CharField(max_length=64)
    billing_mode = models.CharField(max_length=8)
    state = models.CharField(max_length=12)
    node = models.CharField(max_length=200, blank=True, default="")
    summary = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    results_key = models.CharField(max_length=300, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    stop_reason = models.CharField(max_length=32, blank=True, default="")
    progress = models.FloatField(default=0.0)  # EvaluationProgressed, 1.0 once it succeeded
    images_done = models.PositiveIntegerField(default=0)
    images_total = models.PositiveIntegerField(null=True)
    eta_s = models.FloatField(null=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    last_position = models.BigIntegerField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="evaluation_tenant_created"),
                   models.Index(fields=["model_id"], name="evaluation_model"),
                   models.Index(fields=["task_id"], name="evaluation_task")]

    def __str__(self) -> str:
        return f"evaluation {self.id} of model {self.model_id}"

    @property
    def iou(self) -> float:
        """The run's IoU threshold."""
        return float(self.options.get("iou", 0.5))

    @property
    def score_threshold(self) -> float:
        """The run's score threshold (a validation task's base confidence)."""
        return float(self.options.get("score_threshold", 0.5))

    @property
    def score_thresholds(self) -> dict[str, float]:
        """A validation task's per-label confidences (label name -> threshold)."""
        return dict(self.options.get("score_thresholds") or {})

    @property
    def low_iou(self) -> float:
        """The IoU from which a wrong-place find counts as low overlap rather than a miss."""
        return float(self.options.get("low_overlap_iou", 0.1))
