"""The dataset aggregate: what commands check before appending."""

from eventlog.aggregates import Aggregate

UPLOADED, VALIDATING, READY, INVALID = "uploaded", "validating", "ready", "invalid"
STATES = (UPLOADED, VALIDATING, READY, INVALID)


class DatasetAggregate(Aggregate):
    stream_type = "dataset"
    not_found_message = "Dataset not found."

    state = ""
    archived = False
    builtin = False
    kind = ""
    format = ""
    storage_key = ""
    dataset_version = 0  # the dataset's own version (v1, v2, ...), not the stream's

    @property
    def finished(self) -> bool:
        """Validation has a result (ready or invalid)."""
        return self.state in (READY, INVALID)

    def when_DatasetUploaded(self, data: dict) -> None:
        self.state = UPLOADED
        self.kind, self.format = data["kind"], data["format"]
        self.storage_key, self.builtin = data["storage_key"], data["builtin"]
        self.dataset_version = data["version"]

    def when_DatasetValidationStarted(self, data: dict) -> None:
        self.state = VALIDATING

    def when_DatasetValidated(self, data: dict) -> None:
        self.state = READY

    def when_DatasetRejected(self, data: dict) -> None:
        self.state = INVALID

    def when_DatasetArchived(self, data: dict) -> None:
        self.archived = True
