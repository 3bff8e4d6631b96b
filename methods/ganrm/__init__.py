"""GAN-RM (Liu et al., "Fake it till You Make it: Reward Modeling as Discriminative Prediction"):
a reward model trained to tell a few hundred preference proxy samples from generator outputs.

Importing this package is light; plugins are registered lazily from `PLUGINS`. The Python API is
`methods.ganrm.model.GanRM`; the CLI is `methods.ganrm.cli:app` (mounted as `ganrm-bench rm`).
"""

PLUGINS = {
    "scorer": {
        "ganrm": "ganrm_bench.methods.ganrm.scorer:GanRMScorer",
    },
    "backbone": {
        "openclip": ("ganrm_bench.methods.ganrm.backbones:OpenClipBackbone", ["open_clip"]),
        "video_frames": "ganrm_bench.methods.ganrm.backbones:VideoFrameBackbone",
        "viclip": "ganrm_bench.methods.ganrm.backbones:ViclipBackbone",
    },
}


def __getattr__(name):  # `from methods.ganrm import GanRM` without importing torch at package import
    if name == "GanRM":
        from ganrm_bench.methods.ganrm.model import GanRM

        return GanRM
    raise AttributeError(name)
