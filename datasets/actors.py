"""Jobs of datasets: validating an upload off the request, on the CPU queue."""

from datasets import commands, recovery  # noqa: F401  (registers its recoverer)


@commands.VALIDATE.actor(max_retries=3, time_limit=2 * 3600 * 1000)
def validate_dataset(tenant_id: str, dataset_id: str) -> None:
    """Extract the stored zip safely, read it with training_runtime and record the result."""
    commands.validate(tenant_id, dataset_id)
