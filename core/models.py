"""Operational tables of the process plumbing (not projected from the event log)."""

from django.db import models


class WorkLease(models.Model):
    """Which worker holds a piece of work, and when it last said it is alive.

    Keys name the work: `task:<id>` (a training attempt), `dataset:<id>` (a validation),
    `evaluation:<id>`, `service:<id>:<instance>`. A lease that has not been renewed for its
    timeout belongs to a dead worker: the lease sweep (core.lifecycle) hands that work to its
    app's interrupt command, and the recovery sweep (core.recovery) sends validations again.
    """

    key = models.CharField(primary_key=True, max_length=100)
    holder = models.CharField(max_length=250)
    last_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} held by {self.holder}"
