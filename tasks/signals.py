"""What tasks announce to other apps (which tasks do not import)."""

from django.dispatch import Signal

# After the task's success is committed: `task` (the Task row) and `model_id` (its new model).
model_trained = Signal()
