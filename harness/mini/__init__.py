"""The miniature world: scikit-learn digits at 16×16, a project-trained diffusion generator, a
metric network, an annotator and a random-conv RM backbone, so every table runs on a CPU.

Weights ship in `weights/` and are rebuilt bit-identically by `python -m harness.mini.train`.
"""

PLUGINS = {
    "images": {"mini_digits": "harness.mini.sources:MiniDigitsImages"},
    "prompts": {"mini_digits": "harness.mini.sources:MiniDigitsPrompts"},
    "generator": {"mini_diffusion": "harness.mini.generator:MiniDiffusion"},
    "features": {"mini_digits": "harness.mini.features:MiniDigitsFeatures"},
    "backbone": {"mini_conv": "harness.mini.backbone:MiniConv"},
    "scorer": {"mini_annotator": "harness.mini.annotator:MiniAnnotator"},
    "metric": {
        "mini_alignment": "harness.mini.metrics:MiniAlignment",
        "mini_diversity": "harness.mini.metrics:MiniDiversity",
    },
}
