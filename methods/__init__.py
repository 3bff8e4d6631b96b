"""Generators and post-training methods (the rows of every table).

Registered lazily through `PLUGINS` (see harness/builtins.py): importing this package imports
nothing heavy; each "module:Class" target is imported on first use.
"""

PLUGINS = {
    "generator": {
        "diffusers": "methods.generators.diffusers_image:DiffusersImageGenerator",
        "diffusers_video": "methods.generators.diffusers_video:DiffusersVideoGenerator",
    },
    "method": {
        "base": "methods.sampling:Base",
        "rm_at_k": "methods.sampling:RMAtK",
        "rank_of_k": "methods.sampling:RankOfK",
        "diffusion_dpo": "methods.sampling:DiffusionDPO",
        "sft": "methods.posttrain:SFT",
        "dpo": "methods.posttrain:DPO",
        "multi_round": "methods.multi_round:MultiRound",
    },
}
