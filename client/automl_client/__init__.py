"""Python client of the AutoML platform's REST API and live event stream.

    from automl_client import Client
    client = Client("http://localhost:8000", token="aml_...")
    for task in client.tasks(state="running"):
        print(task.name, task.progress)
"""

from automl_client import errors
from automl_client.client import Client
from automl_client.errors import ApiError
from automl_client.models import (
    Dataset,
    Evaluation,
    Event,
    Project,
    Service,
    Task,
    TrainedModel,
    Usage,
    Wallet,
)

__all__ = ["ApiError", "Client", "Dataset", "Evaluation", "Event", "Project", "Service", "Task",
           "TrainedModel", "Usage", "Wallet", "errors"]
