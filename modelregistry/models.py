"""The trained-model read model (modelregistry.projections), rebuilt from the event log."""

from django.db import models

from accounts.api import TenantScopedManager

DEFAULT_VALIDATION_FRACTION = 0.2  # what training held out before events said so
DEFAULT_SPLIT_SEED = 0


class TrainedModel(models.Model):
    """A model a task produced: its artifact in storage, labels, metrics and lineage."""

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    project_id = models.UUIDField()
    task_id = models.UUIDField()
    version = models.PositiveIntegerField()
    scenario = models.CharField(max_length=16)
    model_name = models.CharField(max_length=64)
    labels = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)
    artifact_key = models.CharField(max_length=300)
    input_size = models.JSONField(default=list)
    train_dataset_id = models.UUIDField(null=True)  # None: imported, trained elsewhere
    test_dataset_id = models.UUIDField(null=True)
    # The hold-out split as training made it (DatasetIndex.split): what evaluation repeats.
    validation_fraction = models.FloatField(default=DEFAULT_VALIDATION_FRACTION)
    split_seed = models.BigIntegerField(default=DEFAULT_SPLIT_SEED)
    created_at = models.DateTimeField()
    # per format (artifact, onnx, torchscript): {"key", ...} or {"unavailable": reason}
    formats = models.JSONField(default=dict)
    # "trained" by a task here, or "imported" (task_id is then the model's own stream id)
    origin = models.CharField(max_length=16, default="trained")

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="model_tenant_created")]

    def __str__(self) -> str:
        return f"model {self.id} of task {self.task_id}"
