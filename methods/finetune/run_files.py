"""The files a training run leaves, and reads back when it resumes: checkpoints (trainable weights,
optimizer moments, LR schedule, step; complete or absent), the weights after each `eval_at` step
(moved into the result as `checkpoints/step-<s>/`), and the per-step log. Shared by the offline
fine-tunes (methods.finetune.train) and online RL (methods.finetune.online)."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.finetune import weights as W

if TYPE_CHECKING:
    from ganrm_bench.methods.finetune.train import TrainConfig

EVALS = "evals"  # in the work folder: the eval_at weights written during training (they survive a resume)
CHECKPOINTS = "checkpoints"  # in the result: checkpoints/step-<s>/{weights.safetensors, finetune.json}


def checkpoint_dir(result_dir: str | Path, step: int) -> Path:
    """Where the result of a fine-tune keeps its weights after optimizer step `step` (eval_at)."""
    return Path(result_dir) / CHECKPOINTS / f"step-{step:08d}"


def lora_meta(cfg: TrainConfig) -> dict[str, Any] | None:
    return {"rank": cfg.lora_rank, "alpha": cfg.lora_alpha, "targets": list(cfg.lora_targets)} if cfg.finetune == "lora" else None


def save_eval_checkpoint(unet: torch.nn.Module, cfg: TrainConfig, step: int, root: Path) -> Path:
    """The trainable weights after `step`, in the format of the final result (so a row loads them
    the same way), written to a temp dir and renamed: complete or absent. A resume that replays
    this step writes the same bytes again."""
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    W.save_weights(unet, tmp, kind=cfg.finetune, lora=lora_meta(cfg), meta={"train": cfg.identity(), "step": step})
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return final


def collect_eval_checkpoints(cfg: TrainConfig, evals: Path, out_dir: Path) -> None:
    """Move the eval_at weights from the work folder into the result; every step must be there."""
    missing = [s for s in cfg.eval_at if not (evals / f"step-{s:08d}" / W.WEIGHTS).is_file()]
    if missing:
        raise UserError(f"fine-tune finished without the eval_at checkpoints of steps {missing} in {evals}",
                        hint=f"remove {evals.parent} and rerun (its resume checkpoints predate them)")
    for s in cfg.eval_at:
        dst = checkpoint_dir(out_dir, s)
        shutil.rmtree(dst, ignore_errors=True)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(evals / f"step-{s:08d}", dst)


# -- resumable checkpoints -------------------------------------------------------------------------------


class Checkpoints:
    """`<root>/step-00000500/{trainable,optimizer}.safetensors + state.json`, written to a temp dir
    and renamed, so a checkpoint is complete or absent; only the newest `keep` are kept."""

    def __init__(self, root: Path, config_key: str, keep: int):
        self.root, self.config_key, self.keep = root, config_key, keep

    def _dirs(self) -> list[Path]:
        return sorted(p for p in self.root.glob("step-*") if (p / "state.json").is_file())

    def save(self, step: int, unet, names: list[str], optimizer, lr_schedule) -> Path:
        from safetensors.torch import save_file

        params = dict(unet.named_parameters())
        final = self.root / f"step-{step:08d}"
        tmp = self.root / f".tmp-{step:08d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({n: params[n].detach().cpu().contiguous() for n in names}, str(tmp / "trainable.safetensors"))
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        state = {"step": step, "config_key": self.config_key, "optimizer": opt_meta, "lr_schedule": lr_schedule.state_dict()}
        (tmp / "state.json").write_text(json.dumps(state, default=_json_safe))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        for old in self._dirs()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def resume(self, unet, names: list[str], optimizer, lr_schedule) -> int:
        """Load the newest checkpoint; return its step (0 if none)."""
        from safetensors.torch import load_file

        dirs = self._dirs()
        if not dirs:
            return 0
        last = dirs[-1]
        state = json.loads((last / "state.json").read_text())
        if state.get("config_key") != self.config_key:
            raise UserError(f"checkpoint {last} was written by a different training configuration",
                            hint=f"remove {self.root} to start over, or restore the configuration it was made with")
        tensors = load_file(str(last / "trainable.safetensors"))
        params = dict(unet.named_parameters())
        if set(tensors) != set(names):
            raise UserError(f"checkpoint {last} does not match the trainable parameters of this model",
                            hint=f"remove {self.root} to start over")
        with torch.no_grad():
            for n in names:
                params[n].copy_(tensors[n])
        optimizer.load_state_dict(_unflatten_optimizer(load_file(str(last / "optimizer.safetensors")), state["optimizer"]))
        lr_schedule.load_state_dict(state["lr_schedule"])
        return int(state["step"])


def _flatten_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        entry = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
                entry[k] = {"tensor": f"{pid}.{k}"}
            else:
                entry[k] = {"value": v}
        meta["state"][str(pid)] = entry
    return tensors, meta


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state = {int(pid): {k: tensors[v["tensor"]] if "tensor" in v else v["value"] for k, v in entry.items()}
             for pid, entry in meta["state"].items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def _json_safe(obj: Any) -> Any:
    if torch.is_tensor(obj):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} into a checkpoint")


# -- the per-step log -------------------------------------------------------------------------------------


def finite_mean(values: list[float]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(vals)) if vals else None


def append_log(path: Path, row: dict[str, Any], fresh: bool, fields: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w" if fresh else "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        if fresh or f.tell() == 0:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in fields})


def read_log(path: Path, upto: int, *, fields: Sequence[str], rewrite: bool = True) -> list[dict[str, Any]]:
    """Rows of steps ≤ upto (rows past the resumed checkpoint are rewritten by the rerun; only by the
    main process, which alone appends to the log)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [{k: (float(v) if v not in ("", None) else math.nan) for k, v in r.items()} for r in csv.DictReader(f)]
    rows = [r for r in rows if r["step"] <= upto]
    for r in rows:
        r["step"] = int(r["step"])
    if not rewrite:
        return rows
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        w.writerows(rows)
    return rows
