"""Metric plugins (FID, ImageReward, PickScore, HPS v2, CLIPScore, IP, LPIPS, FVD, VBench), the
scorer adapters that let the per-sample ones act as selectors, and the feature extractors.

Registered lazily by harness.builtins: nothing heavy is imported until a plugin is used.
"""

PLUGINS = {
    "metric": {
        "fid": "metrics.fid:FID",
        "image_reward": ("metrics.image_reward:ImageReward", ["imagereward", "ir"]),
        "pickscore": ("metrics.pickscore:PickScore", ["pick_score"]),
        "hps": ("metrics.hps:HPS", ["hpsv2"]),
        "clip_score": ("metrics.clip_score:CLIPScore", ["clipscore"]),
        "ip": "metrics.ip:IP",
        "lpips": "metrics.lpips_metric:LPIPS",
        "fvd": "metrics.fvd:FVD",
        "vbench": "metrics.vbench:VBench",
    },
    "scorer": {
        "image_reward": ("metrics.image_reward:ImageRewardScorer", ["imagereward"]),
        "pickscore": ("metrics.pickscore:PickScoreScorer", ["pick_score"]),
        "hps": ("metrics.hps:HPSScorer", ["hpsv2"]),
        "clip_score": ("metrics.clip_score:CLIPScoreScorer", ["clipscore"]),
    },
    "features": {
        "inception": "metrics.inception:InceptionFeatures",
        "i3d": "metrics.fvd:I3DFeatures",
        "videomae": "metrics.fvd:VideoMAEFeatures",
    },
}
