"""Where this process runs: its shard of the inputs and its device, from options and launcher.

torchrun sets ``RANK``/``WORLD_SIZE`` (global over all nodes) and ``LOCAL_RANK``; SLURM sets
``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS`` inside an ``srun`` step.
"""

from __future__ import annotations

import os

import torch

from satcnn.checks import require_at_least, require_in_range
from satcnn.errors import ConfigError

__all__ = ["resolve_device", "resolve_shard", "shard_from_env"]


def shard_from_env(env: dict[str, str] | None = None) -> tuple[int, int]:
    """``(index, count)`` of this process from the launcher's environment; else ``(0, 1)``.

    torchrun's ``RANK``/``WORLD_SIZE`` (global over all nodes), then SLURM's
    ``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS``, which exist only inside an ``srun`` step: a plain
    ``sbatch`` script (``SLURM_NTASKS`` set for the allocation, one process) runs every tile.
    ``LOCAL_RANK`` is not used: it restarts on each node, so shards would repeat across nodes.

    Raises:
        ConfigError: The variables are not integers.
    """
    env = dict(os.environ if env is None else env)
    for rank_key, size_key in (
        ("RANK", "WORLD_SIZE"),
        ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS"),
    ):
        if rank_key in env and size_key in env:
            try:
                return int(env[rank_key]), int(env[size_key])
            except ValueError:
                raise ConfigError(
                    f"{rank_key}={env[rank_key]!r} / {size_key}={env[size_key]!r} are not integers"
                ) from None
    return 0, 1


def resolve_shard(index: int | None, count: int | None, env: dict[str, str] | None = None) -> tuple[int, int]:
    """The shard given in the options (both set), else the launcher's (see ``shard_from_env``).

    Raises:
        ConfigError: The launcher's shard is not one of its shards.
    """
    if index is not None and count is not None:
        return index, count
    index, count = shard_from_env(env)
    require_at_least("launcher's shard count", count, 1)
    require_in_range("launcher's shard index", index, 0, count, high_open=True)
    return index, count


def resolve_device(device: str, env: dict[str, str] | None = None) -> str:
    """Check ``device`` and pin plain ``cuda`` to ``cuda:<LOCAL_RANK>`` under torchrun.

    Raises:
        ConfigError: A CUDA device is asked for but CUDA is not available, or the name is invalid.
    """
    env = dict(os.environ if env is None else env)
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"invalid device {device!r}: {err}") from None
    if dev.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    if dev.index is None and env.get("LOCAL_RANK", "").isdigit():
        return f"cuda:{int(env['LOCAL_RANK'])}"
    return device
