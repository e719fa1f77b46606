"""Dataset events -> the Dataset read model and its corrections."""

from collections.abc import Sequence

from datasets.aggregates import INVALID, READY, VALIDATING
from datasets.models import Dataset, DatasetCorrection
from eventlog import projections, rowfold
from eventlog.store import RecordedEvent

_RESULTS = {"DatasetValidated": READY, "DatasetRejected": INVALID}
_READS = {"DatasetUploaded", "DatasetAnnotationCorrected"}


class DatasetList(projections.Projection):
    name = "datasets.datasets"
    event_types = {"DatasetUploaded", "DatasetValidationStarted", "DatasetValidated",
                   "DatasetRejected", "DatasetArchived", "DatasetAnnotationCorrected"}
    models = [Dataset, DatasetCorrection]

    def prepare(self, events: Sequence[RecordedEvent], rows: rowfold.Batch) -> None:
        # The rows a fold reads: parents of new versions, versions being corrected.
        new = {e.stream_id for e in events if e.type == "DatasetUploaded"}
        rows[Dataset].load({e.data["parent"] if e.type == "DatasetUploaded" else e.stream_id
                            for e in events if e.type in _READS} - new)

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        data, datasets = event.data, rows[Dataset]
        if event.type == "DatasetUploaded":
            parent = data["parent"]
            origin = event.stream_id if parent is None else datasets.get(parent)["origin"]
            datasets.create(
                id=event.stream_id, tenant_id=event.tenant_id, project=data["project"],
                name=data["name"], kind=data["kind"], format=data["format"],
                version=data["version"], parent=parent, origin=origin,
                storage_key=data["storage_key"], size_bytes=data["size_bytes"],
                builtin=data["builtin"], created_by=data["uploaded_by"],
                created_at=event.recorded_at, updated_at=event.recorded_at,
                stream_version=event.version, last_position=event.position,
            )
            return
        changes: dict[str, object] = {"updated_at": event.recorded_at,
                                      "stream_version": event.version,
                                      "last_position": event.position}
        if event.type == "DatasetValidationStarted":
            changes["state"] = VALIDATING
        elif event.type in _RESULTS:
            changes.update(state=_RESULTS[event.type], image_count=data["image_count"],
                           labels=data["labels"], errors=data["errors"],
                           warnings=data["warnings"])
        elif event.type == "DatasetArchived":
            changes["archived_at"] = event.recorded_at
        elif event.type == "DatasetAnnotationCorrected":
            self._correction(event, rows)
        datasets.update(event.stream_id, **changes)

    @staticmethod
    def _correction(event: RecordedEvent, rows: rowfold.Batch) -> None:
        version = rows[Dataset].get(event.stream_id)
        data = event.data
        rows[DatasetCorrection].create(
            position=event.position, tenant_id=event.tenant_id, dataset=event.stream_id,
            origin=version["origin"], version=version["version"], parent=version["parent"],
            file_name=data["file_name"], new_file_name=data["new_file_name"],
            before=data["before"], after=data["after"], note=data["note"],
            source=data["source"], created_at=event.recorded_at,
        )


projections.register(DatasetList())
