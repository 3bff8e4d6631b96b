"""Data-parallel fine-tuning: 2 CPU processes (torchrun, gloo) with batch B train the same weights
as 1 process with batch 2B — examples and their random draws do not depend on the process count."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).parent / "ddp_finetune_script.py"


@pytest.mark.parametrize("precompute", [False, True])
def test_two_processes_train_like_one_with_twice_the_batch(tmp_path, mini_weights, precompute):
    """… also when each process precomputes the encodings of the examples it trains on."""
    torchrun = Path(sys.executable).parent / "torchrun"
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]  # = torchrun
    from tests.methods.finetune.ddp_finetune_script import main

    main(str(tmp_path / "one"), 4, str(mini_weights))
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [*launcher, "--nproc_per_node", "2", "--master_port", str(port), str(SCRIPT), str(tmp_path / "two"), "2", str(mini_weights),
         *(["precompute"] if precompute else [])],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = load_file(str(tmp_path / "one" / "result" / "weights.safetensors"))
    two = load_file(str(tmp_path / "two" / "result" / "weights.safetensors"))
    assert one.keys() == two.keys()
    assert any(v.abs().max() > 1e-3 for k, v in one.items() if "lora_B" in k)  # the LoRA did train
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5), k
    log_one = (tmp_path / "one" / "result" / "log.csv").read_text().splitlines()
    log_two = (tmp_path / "two" / "result" / "log.csv").read_text().splitlines()
    loss = lambda lines: [float(line.split(",")[1]) for line in lines[1:]]  # noqa: E731
    assert loss(log_one) == pytest.approx(loss(log_two), rel=1e-5)
