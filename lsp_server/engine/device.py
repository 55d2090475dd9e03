"""Which device serves the model, decided without importing torch when no GPU can exist."""

from __future__ import annotations

import sys
from pathlib import Path


def cuda_available() -> bool:
    """Whether a CUDA GPU is usable; on Linux without an NVIDIA driver, torch is not imported.

    Importing torch costs seconds of start-up, which the llama.cpp CPU path does not need.
    """
    if sys.platform.startswith("linux") and "torch" not in sys.modules and not (
        Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()
    ):
        return False
    import torch

    return bool(torch.cuda.is_available())


def pick_device(device: str) -> str:
    """Resolve ``auto`` to ``cuda`` when a CUDA GPU is usable, else ``cpu``."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is usable here")
    return device
