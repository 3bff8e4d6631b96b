"""GAN-RM features with images decoded and preprocessed (open_clip's transform) in DataLoader
workers: byte-identical to the main process doing both."""

import os

import numpy as np

from ganrm_bench.harness.plugins import Item
from ganrm_bench.harness.runtime import Context
from ganrm_bench.harness.store import Store
from ganrm_bench.methods.ganrm.backbones import OpenClipBackbone
from ganrm_bench.methods.ganrm.features import item_features

from ganrm_fixtures import TINY, write_images


def test_features_prepared_in_workers_are_byte_identical(tmp_path):
    paths = write_images(tmp_path / "imgs", 7, 120, seed=3)
    items = [Item(f"k{i}", str(p)) for i, p in enumerate(paths)]
    out, where = {}, {}
    for workers in (0, 2):
        bb = OpenClipBackbone(TINY)
        real, log = bb.prepare, tmp_path / f"prepared{workers}"
        log.mkdir()

        def recording(image, real=real, log=log):
            (log / f"{os.getpid()}.{os.urandom(4).hex()}").touch()
            return real(image)

        bb.prepare = recording
        ctx = Context(store=Store(tmp_path / f"store{workers}"), loader_workers=workers, batch_size=3)
        out[workers] = item_features(bb, items, ctx, batch_size=3)
        where[workers] = {int(p.name.split(".")[0]) for p in log.iterdir()}
        assert len(list(log.iterdir())) == 7  # each image preprocessed once
    assert where[0] == {os.getpid()} and os.getpid() not in where[2]
    assert out[0].tobytes() == out[2].tobytes()
