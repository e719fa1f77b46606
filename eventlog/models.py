"""The event log table and the bookkeeping of projections that follow it."""

from django.db import models
from django.utils import timezone


class EventQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: object) -> "EventQuerySet":
        """Only this tenant's events."""
        return self.filter(tenant_id=tenant_id)


class Event(models.Model):
    """One fact in the log. Rows are never updated or deleted: the database refuses it.

    On PostgreSQL `position` is set by a trigger from the writing transaction's id (see
    `eventlog.guards`), which is what lets readers follow the log without gaps; on SQLite
    it is the autoincrement of serialised writers.
    """

    position = models.BigAutoField(primary_key=True)
    tenant_id = models.UUIDField()
    stream_type = models.CharField(max_length=64)
    stream_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=100)
    schema_version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(default=timezone.now)

    objects = EventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream_id", "version"],
                                    name="eventlog_stream_version"),
        ]
        indexes = [
            models.Index(fields=["tenant_id", "position"], name="eventlog_tenant_position"),
            models.Index(fields=["stream_type", "position"], name="eventlog_type_position"),
        ]

    def __str__(self) -> str:
        return f"{self.position} {self.stream_type}/{self.stream_id}@{self.version} {self.type}"


class ProjectionCheckpoint(models.Model):
    """How far a projection has been caught up (by a rebuild or a catch-up run)."""

    name = models.CharField(max_length=100, primary_key=True)
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"


class PolicyDeadLetter(models.Model):
    """An event a policy gave up reacting to after EVENTLOG_POLICY_MAX_ATTEMPTS failures in a
    row: the policy went on past it, and an operator retries or dismisses it
    (`manage.py policies`). Bookkeeping beside the log, like the checkpoints."""

    policy = models.CharField(max_length=100)
    position = models.BigIntegerField()
    tenant_id = models.UUIDField()
    stream_type = models.CharField(max_length=64)
    stream_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=100)
    error = models.TextField()
    attempts = models.PositiveIntegerField()
    failed_at = models.DateTimeField(default=timezone.now)
    resolution = models.CharField(max_length=16, blank=True)  # "", "retried", "dismissed"
    resolved_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["policy", "position"],
                                               name="eventlog_dead_letter_once")]

    def __str__(self) -> str:
        return f"{self.policy} gave up on event {self.position}"
