"""A spec of method rows over the mini generator and the test method plugins (method_plugins.py),
written to a folder, and a graph builder for it."""

from __future__ import annotations

import yaml

from ganrm_bench.harness.spec.load import load_spec
from tests.helpers import HELPERS

PLUGINS = str(HELPERS / "method_plugins.py")
TRAIN = {"steps": 2, "batch_size": 2, "grad_accum": 1, "warmup_steps": 0, "lr": 1.0e-3, "k": 3, "train_prompts": "train"}



def write_spec(tmp_path, generators, methods, name="rows"):
    spec = {
        "spec_version": 1, "name": name, "plugins": [PLUGINS],
        "generators": generators,
        "prompts": {
            "eval": {"source": "list", "prompts": ["a handwritten digit 1", "a handwritten digit 7", "a handwritten digit 3"]},
            "train": {"source": "list", "prompts": ["a handwritten digit 2", "a handwritten digit 5"], "ids": ["t2", "t5"]},
        },
        "images": {"ppd": {"source": "mt_bright"}},
        "scorers": {"rm": {"scorer": "mt_rm", "train": {"positives": "ppd", "negatives": {"generator": "gen", "prompts": "train", "k": 2}}}},
        "methods": methods,
        "metrics": {"bright": {"metric": "mt_brightness"}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_spec(path)


def builder(spec, ctx, seed=0):
    from ganrm_bench.harness.engine.builder import Builder

    return Builder(spec, ctx, seed)
