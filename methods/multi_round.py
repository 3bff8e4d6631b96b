"""`multi_round`: Algorithm 1 of the GAN-RM paper. Round r samples with G^r, retrains the RM on the
PPD vs G^r's samples (positives are always the PPD), scores a K-sample pool of G^r, builds pairs
(or the best samples) and fine-tunes G^r into G^{r+1}.

Every round's RM and generator are artifacts whose keys chain to the previous round, so rows
`round: 1`, `round: 2`, `round: 3` of one spec share rounds 1..r and one run yields Tables 5 and 9.
Each round's reward mean and variance on its own samples is stored (`reward_stats` artifacts).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ganrm_bench.harness.plugins.base import Method
from ganrm_bench.methods.ops import (
    REWARD_STATS,
    WITH_RECORDS,
    finetune_round,
    finetuned_generator_node,
    prompts_entry,
    require_finetunable,
    run_config,
)
from ganrm_bench.methods.posttrain import PostTrainParams


class MultiRoundParams(PostTrainParams):
    objective: Literal["dpo", "sft"] = "dpo"
    rounds: int = Field(3, ge=1, description="fine-tuning rounds; the row samples from the generator after them")
    retrain_rm: bool = Field(True, description="retrain a trainable scorer on PPD vs each round's samples")


class MultiRound(Method):
    """Multi-round post-training (Algorithm 1): RM retrained on each round's samples, then DPO/SFT."""

    version = "1"
    uses = ("generator", "prompts", "scorer")
    Params = MultiRoundParams

    def build(self, b, entry):
        require_finetunable(b, entry, self.name)
        p = self.params
        cfg = run_config(b, p)
        train_prompts = prompts_entry(b, entry, p.train_prompts)
        scorer_entry = b.spec.scorers[entry.scorer]
        gen = b.generator(entry.generator)
        records = {}
        for r in range(1, p.rounds + 1):
            rm = self._round_scorer(b, entry.scorer, scorer_entry, gen, r) if p.retrain_rm else b.scorer(entry.scorer)
            weights, pool, scores = finetune_round(b, gen, train_prompts, rm, cfg, p.k,
                                                   label=f"{entry.generator}:{cfg.objective}:round{r}")
            records[f"round{r}_reward"] = b.node(REWARD_STATS, {"round": r}, {"pool": pool, "scores": scores},
                                                 label=f"{entry.generator}:round{r}:reward")
            gen = finetuned_generator_node(b, gen, weights, label=f"{entry.generator}+{cfg.objective}{r}")
        samples = b.pool(gen, entry.prompts, k=p.eval_k)
        return b.node(WITH_RECORDS, {}, {"samples": samples, **records}, label=samples.label)

    @staticmethod
    def _round_scorer(b, name, scorer_entry, generator, r):
        """R^r: the scorer entry's training recipe with G^r's samples as negatives (and unlabeled
        pool, for bootstrapping). Round 1 is the entry's own RM when its negatives come from the
        row's generator. A pretrained (untrainable) scorer is used as-is in every round."""
        t = scorer_entry.train
        if t is None:
            return b.scorer(name)
        negatives = b.pool(generator, t.negatives.prompts, t.negatives.k)
        unlabeled = b.pool(generator, t.unlabeled.prompts, t.unlabeled.k) if t.unlabeled else None
        return b.trained_scorer(name, positives=b.images(t.positives), negatives=negatives, unlabeled=unlabeled,
                                label=f"{name}:round{r}")
