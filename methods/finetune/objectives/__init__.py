"""Fine-tuning objectives behind one protocol (`base.Objective`), looked up by name: the training
loop calls whichever the config names, without a branch per objective."""

from __future__ import annotations

from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.finetune.objectives.base import Objective
from ganrm_bench.methods.finetune.objectives.dpo import DPOObjective
from ganrm_bench.methods.finetune.objectives.sft import SFTObjective

OBJECTIVES: dict[str, Objective] = {o.name: o for o in (SFTObjective(), DPOObjective())}


def objective_for(name: str) -> Objective:
    """The registered objective called `name` (a one-line error naming the known ones otherwise)."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise UserError(f"unknown fine-tuning objective {name!r}", hint=f"known: {', '.join(sorted(OBJECTIVES))}") from None
