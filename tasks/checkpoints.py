"""Training checkpoints in object storage: the last one of a task, so that another worker can
resume an interrupted attempt."""

from core.stored_files import download, upload

__all__ = ["download", "upload"]
