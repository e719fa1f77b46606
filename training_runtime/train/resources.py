"""Resource usage of the training process, sampled once per epoch."""

from __future__ import annotations

import psutil
import torch

from training_runtime.train.events import ResourceUsage


class ResourceMonitor:
    """CPU percent since the previous sample, RSS, and CUDA utilisation/memory when on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.process = psutil.Process()
        self.process.cpu_percent(interval=None)  # primes the counter; the first value is 0.0

    def sample(self) -> ResourceUsage:
        """The usage now."""
        cpu = self.process.cpu_percent(interval=None)
        memory_mb = self.process.memory_info().rss / 2**20
        if self.device.type != "cuda":
            return ResourceUsage(cpu, memory_mb)
        gpu_memory_mb = torch.cuda.memory_reserved(self.device) / 2**20
        try:  # needs pynvml / amdsmi; absent on some hosts
            utilisation: float | None = float(torch.cuda.utilization(self.device))
        except Exception:
            utilisation = None
        return ResourceUsage(cpu, memory_mb, utilisation, gpu_memory_mb)
