"""Multi-node launches: the Trainer built by the CLI reads the rank layout from torchrun or SLURM."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from satcnn.lightning_cli import SatcnnCLI
from tests.factories import CONFIGS, SAT6_CSV

BASE = [
    "--config",
    str(CONFIGS / "deepsat" / "sat6.yaml"),
    "--config",
    str(CONFIGS / "trainer" / "multinode.yaml"),
]
CPU = ["--data.init_args.root", str(SAT6_CSV), "--trainer.accelerator", "cpu", "--trainer.precision", "32"]


def _clear_launchers(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("SLURM_", "TORCHELASTIC_", "PMI_", "OMPI_")) or key in (
            "RANK",
            "LOCAL_RANK",
            "GROUP_RANK",
            "NODE_RANK",
            "WORLD_SIZE",
            "LOCAL_WORLD_SIZE",
            "MASTER_ADDR",
            "MASTER_PORT",
        ):
            monkeypatch.delenv(key)


def test_torchrun_layout(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun --nnodes 2 --nproc-per-node 2: this process is node 1, local rank 1, global rank 3."""
    _clear_launchers(monkeypatch)
    env = {
        "TORCHELASTIC_RUN_ID": "satcnn-test",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
        "WORLD_SIZE": "4",
        "RANK": "3",
        "GROUP_RANK": "1",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cli = SatcnnCLI(args=[*BASE, *CPU, "--trainer.devices", "2", "--trainer.num_nodes", "2"], run=False)
    trainer = cli.trainer
    environment = trainer.strategy.cluster_environment  # type: ignore[attr-defined]
    assert isinstance(environment, TorchElasticEnvironment)
    assert trainer.num_nodes == 2 and trainer.num_devices == 2
    assert trainer.world_size == 4 and trainer.node_rank == 1
    assert trainer.global_rank == 3 and trainer.local_rank == 1 and not trainer.is_global_zero
    assert environment.main_address == "127.0.0.1" and environment.main_port == 29500


def test_slurm_layout(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sbatch --nodes 2 --ntasks-per-node 2, srun: task 2 runs on node 1 as local rank 0."""
    _clear_launchers(monkeypatch)
    env = {
        "SLURM_JOB_ID": "1234",
        "SLURM_JOB_NAME": "satcnn",
        "SLURM_NTASKS": "4",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "2",
        "SLURM_NODELIST": "gpu[01-02]",
        "SLURM_PROCID": "2",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cli = SatcnnCLI(args=[*BASE, *CPU, "--trainer.devices", "2", "--trainer.num_nodes", "2"], run=False)
    trainer = cli.trainer
    environment = trainer.strategy.cluster_environment  # type: ignore[attr-defined]
    assert isinstance(environment, SLURMEnvironment)
    assert trainer.num_nodes == 2 and trainer.world_size == 4
    assert trainer.node_rank == 1 and trainer.global_rank == 2 and trainer.local_rank == 0
    assert environment.main_address == "gpu01"


def test_multinode_config_defaults() -> None:
    """The shipped overlay is DDP over several nodes."""
    import yaml

    trainer = yaml.safe_load((CONFIGS / "trainer" / "multinode.yaml").read_text())["trainer"]
    assert trainer["strategy"] == "ddp" and trainer["num_nodes"] > 1
