"""GAN-RM features with images decoded and preprocessed (open_clip's transform) in DataLoader
workers: byte-identical to the main process doing both."""

import os

from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.methods.ganrm.backbones import OpenClipBackbone
from ganrm_bench.methods.ganrm.features import item_features
from tests.helpers.ganrm_fixtures import TINY, write_images


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


def test_gan_rm_scores_read_only_uncached_images_in_workers(tmp_path):
    """Scoring with a GAN-RM (a scorer taking Items): the workers decode and preprocess the images
    whose features are not cached, and skip the others; scores are byte-identical to no workers."""
    from ganrm_bench.harness.plugins.sources import FolderImages
    from ganrm_bench.methods.search import score_items
    from tests.helpers.ganrm_fixtures import make_scorer

    pos_dir, neg_dir, new_dir = tmp_path / "pos", tmp_path / "neg", tmp_path / "new"
    write_images(pos_dir, 6, 190, seed=1)
    write_images(neg_dir, 6, 70, seed=2)
    write_images(new_dir, 6, 130, seed=4)
    scores, where = {}, {}
    for workers in (0, 2):
        ctx = Context(store=Store(tmp_path / f"store{workers}"), loader_workers=workers)
        load = lambda p: FolderImages(path=str(p)).load(ctx)  # noqa: E731
        pos, neg, new = load(pos_dir), load(neg_dir), load(new_dir)
        scorer = make_scorer(epochs=5, variant="naive")
        scorer.fit(pos, neg, ctx)  # the features of pos and neg are cached now; new's are not
        log = tmp_path / f"prepared{workers}"
        log.mkdir()
        real = scorer.backbone.prepare

        def recording(image, real=real, log=log):
            (log / f"{os.getpid()}.{os.urandom(4).hex()}").touch()
            return real(image)

        scorer.backbone.prepare = recording
        items = [*pos.items[:4], *new.items, *neg.items[:4]]
        ctx.batch_size = 4
        scores[workers] = score_items(scorer, "ganrm-test", items, ctx, "score")
        where[workers] = [int(p.name.split(".")[0]) for p in log.iterdir()]
    assert len(where[0]) == len(where[2]) == 6  # only the 6 new images are read and preprocessed
    assert set(where[0]) == {os.getpid()} and os.getpid() not in where[2]
    assert scores[0].tobytes() == scores[2].tobytes()
