"""Every claim the claims tests assert, registered here before any of their numbers is computed
(issue 25): id, the two rows, the column, the kind (better / not worse) and the margin. The claims
of one spec are one family, Holm-corrected together at a family-wise 5 % (harness.stats.claims);
a trained row's difference has a t interval across the seeds (harness.stats.twolevel).

Changing a claim here after seeing its numbers is tuning: say why in the commit."""

from __future__ import annotations

from ganrm_bench.harness.stats.claims import Claim

# spec (benchmarks/mini/<name>.yaml) -> its family of claims
FAMILIES: dict[str, list[Claim]] = {
    # Table 1: post-training with GAN-RM beats the base model (FID, KID down; alignment up)
    "table1": [
        *(Claim(f"table1.{row}.{col}", row, "base", col) for row in ("rm10", "sft", "dpo") for col in ("fid", "kid")),
        *(Claim(f"table1.{row}.align", row, "base", "align") for row in ("rm10", "dpo")),
    ],
    # Table 4: bootstrapping is the best GAN-RM variant for selection
    "table4": [Claim(f"table4.bootstrap_vs_{v}", "sel_bootstrap", v, "fid") for v in ("sel_naive", "sel_average", "sel_voting")],
    # Tables 5 / 9: more rounds of multi-round DPO help
    "table9": [Claim(f"table5.round3_vs_round1.{col}", "round3", "round1", col) for col in ("fid", "kid")],
    # Table 7: more PPD helps
    "table7": [Claim(f"table7.{row}_n500_vs_n50", row, small, "fid") for row, small in (("rm10", "rm10_n50"), ("dpo", "dpo_n50"))],
    # Table 8: more samples per prompt help
    "table8": [Claim(f"table8.{row}_vs_k2", row, small, "fid") for row, small in (("rm10", "rm2"), ("dpo", "dpo_k2"))],
    # Fig. 2: quality falls with the GAN-RM rank (the rank correlation is descriptive, outside the family)
    "fig2": [Claim("fig2.rank1_vs_rank10", "rank1", "rank10", "fid")],
    # Inference-time scaling (benchmarks/mini/scaling_ablation.yaml): reaching RM@16 at a fraction of
    # its NFE is non-inferiority within 5 % of RM@16's pooled value (fixed before any search row ran);
    # beating best-of-K at equal NFE, and SMC's steering on its own η = 1 sampler, are superiority
    "scaling_ablation": [
        *(Claim(f"scaling.{m}{b}_reaches_rm16.{col}", f"{m}{b}", "rm16", col, "not_worse", 0.05, relative=True)
          for m in ("search", "smc") for b in (4, 8) for col in ("fid", "kid")),
        *(Claim(f"scaling.{m}{b}_beats_rm{b}.{col}", f"{m}{b}", f"rm{b}", col) for m in ("search", "smc") for b in (4, 8, 16)
          for col in ("fid", "kid")),
        *(Claim(f"scaling.smc16_beats_best16_eta1.{col}", "smc16", "best16_eta1", col) for col in ("fid", "kid")),
    ],
}

CLAIMS: dict[str, Claim] = {c.id: c for family in FAMILIES.values() for c in family}
FAMILY_OF: dict[str, str] = {c.id: name for name, family in FAMILIES.items() for c in family}
