"""Default compute specs every install starts with; staff may change prices afterwards."""

from billing.models import ComputeSpec

DEFAULT_SPECS = [
    {"name": "cpu-2c-8g", "kind": "cpu", "cpu_cores": 2, "memory_gib": 8, "price_per_hour": 12},
    {"name": "cpu-8c-32g", "kind": "cpu", "cpu_cores": 8, "memory_gib": 32, "price_per_hour": 48},
    {"name": "gpu-t4-1", "kind": "gpu", "gpu_model": "NVIDIA T4", "gpu_count": 1, "cpu_cores": 8,
     "memory_gib": 32, "price_per_hour": 250},
    {"name": "gpu-a100-1", "kind": "gpu", "gpu_model": "NVIDIA A100 80GB", "gpu_count": 1,
     "cpu_cores": 16, "memory_gib": 128, "price_per_hour": 1500},
]


def seed_default_specs() -> int:
    """Create the default specs that are missing (never touches existing prices)."""
    created = 0
    for spec in DEFAULT_SPECS:
        _, was_created = ComputeSpec.objects.get_or_create(name=spec["name"], defaults=spec)
        created += was_created
    return created
