from django.apps import AppConfig


class TasklogsConfig(AppConfig):
    name = "tasklogs"
    verbose_name = "Training logs"
