"""Running the `ganrm-bench` command in a subprocess, and a toy spec whose generator can be slowed
down (for the locking, interruption and multi-process tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import HELPERS

SLOW_SPEC = """
spec_version: 1
name: slow
plugins: [{plugins}]
generators:
  gen: {{generator: toy_pattern, delay: {delay}, batch_size: 2}}
prompts:
  eval: {{source: toy_prompts, n: 8}}
  train: {{source: toy_prompts, n: 4, prefix: t}}
images:
  ppd: {{source: toy_images}}
scorers:
  rm: {{scorer: toy_rm, train: {{positives: ppd, negatives: {{generator: gen, prompts: train, k: 2}}}}}}
methods:
  base: {{method: toy_base, generator: gen, prompts: eval}}
  best: {{method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 6}}
metrics:
  brightness: {{metric: toy_brightness}}
reference:
  values: {{base: {{brightness: 99.0}}}}
  tolerance: {{brightness: 0.5}}
"""


def cli(*args, env, check=False, **kw):
    return subprocess.run([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", *map(str, args)], env=env, capture_output=True, text=True, check=check, **kw)


def slow_spec(tmp_path, delay=0.0) -> Path:
    p = tmp_path / "slow.yaml"
    p.write_text(SLOW_SPEC.format(plugins=HELPERS / "toy_plugins.py", delay=delay))
    return p
