"""The log store: the lines a training task printed, kept for a while (not events)."""

from django.db import models

from accounts.api import TenantScopedManager

MAX_MESSAGE_CHARS = 10_000
MAX_NODE_CHARS = 200


class Level(models.IntegerChoices):
    """The `logging` levels, stored as their numbers so "at least WARNING" is a comparison."""

    DEBUG = 10, "DEBUG"
    INFO = 20, "INFO"
    WARNING = 30, "WARNING"
    ERROR = 40, "ERROR"
    CRITICAL = 50, "CRITICAL"


class LogLine(models.Model):
    """One line of a task's log; its id is the cursor a tail follows."""

    id = models.BigAutoField(primary_key=True)
    # reads always name the task too, so no index of its own (one less to write per line)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, db_constraint=False,
                               db_index=False)
    task_id = models.UUIDField()
    time = models.DateTimeField()
    node = models.CharField(max_length=MAX_NODE_CHARS)
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    message = models.TextField()

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["task_id", "id"], name="tasklog_task_id"),
                   models.Index(fields=["task_id", "time"], name="tasklog_task_time"),
                   # the hourly retention purge selects by time across all tasks
                   models.Index(fields=["time"], name="tasklog_time")]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.id} {self.get_level_display()} {self.message[:50]}"
