"""The miniature world: scikit-learn digits at 16×16, a project-trained diffusion generator, a
metric network, an annotator and a random-conv RM backbone, so every table runs on a CPU.

Weights ship in `weights/` and are rebuilt bit-identically by `python -m ganrm_bench.mini.train`.
"""

PLUGINS = {
    "images": {"mini_digits": "ganrm_bench.mini.sources:MiniDigitsImages"},
    "prompts": {"mini_digits": "ganrm_bench.mini.sources:MiniDigitsPrompts"},
    "generator": {"mini_diffusion": "ganrm_bench.mini.generator:MiniDiffusion"},
    "features": {"mini_digits": "ganrm_bench.mini.features:MiniDigitsFeatures"},
    "backbone": {"mini_conv": "ganrm_bench.mini.backbone:MiniConv"},
    "scorer": {"mini_annotator": "ganrm_bench.mini.annotator:MiniAnnotator",
               "mini_alignment": "ganrm_bench.mini.metrics:MiniAlignmentScorer"},
    "metric": {
        "mini_alignment": "ganrm_bench.mini.metrics:MiniAlignment",
        "mini_diversity": "ganrm_bench.mini.metrics:MiniDiversity",
        "mini_annotator": "ganrm_bench.mini.annotator:MiniAnnotatorMetric",
    },
}
