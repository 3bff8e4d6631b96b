"""Metric plugins (FID, ImageReward, PickScore, HPS v2, CLIPScore, IP, LPIPS, FVD, VBench, pairwise
accuracy on human preference pairs), the scorer adapters that let the per-sample ones act as
selectors, the feature extractors, and the published human-preference test sets (pair sources).

Registered lazily by harness.plugins.builtins: nothing heavy is imported until a plugin is used.
"""

PLUGINS = {
    "metric": {
        "fid": "ganrm_bench.metrics.fid:FID",
        "kid": "ganrm_bench.metrics.kid:KID",
        "image_reward": ("ganrm_bench.metrics.image_reward:ImageReward", ["imagereward", "ir"]),
        "pickscore": ("ganrm_bench.metrics.pickscore:PickScore", ["pick_score"]),
        "hps": ("ganrm_bench.metrics.hps:HPS", ["hpsv2"]),
        "clip_score": ("ganrm_bench.metrics.clip_score:CLIPScore", ["clipscore"]),
        "ip": "ganrm_bench.metrics.ip:IP",
        "lpips": "ganrm_bench.metrics.lpips_metric:LPIPS",
        "fvd": "ganrm_bench.metrics.fvd:FVD",
        "vbench": "ganrm_bench.metrics.vbench:VBench",
        "pair_accuracy": "ganrm_bench.metrics.pair_accuracy:PairAccuracy",
    },
    "scorer": {
        "image_reward": ("ganrm_bench.metrics.image_reward:ImageRewardScorer", ["imagereward"]),
        "pickscore": ("ganrm_bench.metrics.pickscore:PickScoreScorer", ["pick_score"]),
        "hps": ("ganrm_bench.metrics.hps:HPSScorer", ["hpsv2"]),
        "clip_score": ("ganrm_bench.metrics.clip_score:CLIPScoreScorer", ["clipscore"]),
    },
    "features": {
        "inception": "ganrm_bench.metrics.inception:InceptionFeatures",
        "i3d": "ganrm_bench.metrics.fvd:I3DFeatures",
        "videomae": "ganrm_bench.metrics.fvd:VideoMAEFeatures",
    },
    "pairs": {  # human preference test sets, in their published schemas (metrics/pair_datasets.py)
        "pair_table": "ganrm_bench.metrics.pair_files:PairTable",
        "hpdv2": "ganrm_bench.metrics.pair_datasets:HPDv2Pairs",
        "imagereward_db": "ganrm_bench.metrics.pair_datasets:ImageRewardDBPairs",
        "pickapic_v2": ("ganrm_bench.metrics.pair_datasets:PickAPicPairs", ["pickapic"]),
        "genai_bench_image": "ganrm_bench.metrics.pair_datasets:GenAIBenchImagePairs",
    },
}
