"""Atomic checkpoint writing: a checkpoint is complete at its final path, or absent."""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from satcnn.io.atomic import atomic_output


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file in the same folder, then rename it into place.

    Lightning's own writer opens the final path and streams into it, so a crash or a full disk
    can leave a truncated checkpoint where the last good one was.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        with atomic_output(path) as tmp:
            torch.save(checkpoint, tmp)
