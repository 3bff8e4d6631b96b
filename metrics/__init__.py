"""Metric plugins (FID, ImageReward, PickScore, HPS v2, CLIPScore, IP, LPIPS, FVD, VBench), the
scorer adapters that let the per-sample ones act as selectors, and the feature extractors.

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
}
