"""The torch device a worker runs on, from its device setting (TASK_DEVICE) and the machine."""


def pick_device(setting: str, *, gpu_wanted: bool = True) -> str:
    """The device for `setting`: "auto" is CUDA when present, else the CPU; any other value
    ("cuda", "cpu", "cuda:1") is used as it is. A job that asked for no GPU runs on the CPU."""
    if not gpu_wanted:
        return "cpu"
    if setting != "auto":
        return setting
    import torch  # heavy: only when the machine must be asked

    return "cuda" if torch.cuda.is_available() else "cpu"
