"""Generators and post-training methods (the rows of every table).

Registered lazily through `PLUGINS` (see harness/plugins/builtins.py): importing this package imports
nothing heavy; each "module:Class" target is imported on first use.
"""

PLUGINS = {
    "generator": {
        "diffusers": "ganrm_bench.methods.generators.diffusers_image:DiffusersImageGenerator",
        "diffusers_video": "ganrm_bench.methods.generators.diffusers_video:DiffusersVideoGenerator",
    },
    "method": {
        "base": "ganrm_bench.methods.sampling:Base",
        "rm_at_k": "ganrm_bench.methods.sampling:RMAtK",
        "rank_of_k": "ganrm_bench.methods.sampling:RankOfK",
        "diffusion_dpo": "ganrm_bench.methods.sampling:DiffusionDPO",
        "sft": "ganrm_bench.methods.posttrain:SFT",
        "dpo": "ganrm_bench.methods.posttrain:DPO",
        "grpo": "ganrm_bench.methods.grpo:GRPO",
        "multi_round": "ganrm_bench.methods.multi_round:MultiRound",
        "noise_search": "ganrm_bench.methods.search:NoiseSearch",
        "smc_search": "ganrm_bench.methods.smc_search:SMCSearch",
        "judge": "ganrm_bench.methods.judge:Judge",
    },
    "pairs": {
        "labelled_pairs": "ganrm_bench.methods.labelled_pairs:LabelledPairs",
    },
}
