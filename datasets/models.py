"""The dataset read model (see datasets.projections); rebuilt from the dataset streams."""

from typing import Self

from django.db import models
from django.db.models import Q

from accounts.api import TenantScopedQuerySet
from datasets.aggregates import STATES, UPLOADED


class DatasetQuerySet(TenantScopedQuerySet):
    def visible_to(self, tenant_id: object) -> Self:
        """The tenant's own datasets and the built-in samples every tenant may use."""
        qs = self.filter(Q(tenant_id=tenant_id) | Q(builtin=True))
        qs._tenant_scoped = True
        return qs


DatasetManager = models.Manager.from_queryset(DatasetQuerySet)


class Dataset(models.Model):
    """One version of an uploaded dataset: where its zip is stored and what validation found.

    Every version is its own dataset (and stream); `parent` is the version it was made from and
    `origin` the first version of the line, which all its versions share.
    """

    KINDS = ("classification", "detection", "segmentation")
    FORMATS = ("folders", "coco", "voc")

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    project = models.UUIDField(null=True, blank=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=[(k, k) for k in KINDS])
    format = models.CharField(max_length=16, choices=[(f, f) for f in FORMATS])
    version = models.PositiveIntegerField(default=1)
    parent = models.UUIDField(null=True, blank=True)
    origin = models.UUIDField()
    state = models.CharField(max_length=16, choices=[(s, s) for s in STATES], default=UPLOADED)
    image_count = models.PositiveIntegerField(default=0)
    labels = models.JSONField(default=list)
    errors = models.JSONField(default=list)
    warnings = models.JSONField(default=list)
    storage_key = models.CharField(max_length=500)
    size_bytes = models.BigIntegerField(default=0)
    builtin = models.BooleanField(default=False)
    created_by = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    archived_at = models.DateTimeField(null=True, blank=True)
    stream_version = models.PositiveIntegerField()
    last_position = models.BigIntegerField()

    objects = DatasetManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["origin", "version"], name="dataset_version_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="dataset_tenant_created"),
            models.Index(fields=["builtin", "created_at"], name="dataset_builtin_created"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class DatasetCorrection(models.Model):
    """One corrected image (DatasetAnnotationCorrected), on the version the correction made."""

    position = models.BigIntegerField(primary_key=True)  # the event's position in the log
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False)
    dataset = models.UUIDField()  # the version it made
    origin = models.UUIDField()  # the first version of the line
    version = models.PositiveIntegerField()
    parent = models.UUIDField(null=True, blank=True)
    file_name = models.CharField(max_length=1024)
    new_file_name = models.CharField(max_length=1024)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    note = models.TextField(blank=True, default="")
    source = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    objects = models.Manager.from_queryset(TenantScopedQuerySet)()

    class Meta:
        indexes = [models.Index(fields=["origin", "position"], name="dataset_correction_line")]

    def __str__(self) -> str:
        return f"{self.file_name} (v{self.version})"
