"""The diffusers generator plugins on tiny random-init pipelines saved to disk: the real loading
path, per-request determinism, weights identity, swaps, and fast clear errors for absent weights."""


import numpy as np
import pytest

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator
from ganrm_bench.methods.generators.diffusers_video import DiffusersVideoGenerator, video_to_uint8
from tests.helpers.network import no_network


def requests(n, offset=0):
    return [SampleRequest(Prompt(f"p{i}", f"a photo of thing {i}"), 0, 1000 + offset + i) for i in range(n)]


def arrays(images):
    return [np.asarray(im, dtype=np.int16) for im in images]


def gen(model, **kw):
    return DiffusersImageGenerator({"model": str(model), "steps": 3, "height": 32, "width": 32, **kw})


def test_generates_through_from_pretrained_and_each_item_depends_only_on_its_seed(tiny_sd, ctx):
    reqs = requests(5)
    batched = arrays(gen(tiny_sd, batch_size=3).generate(reqs, ctx))
    assert [a.shape for a in batched] == [(32, 32, 3)] * 5
    singles = arrays(gen(tiny_sd, batch_size=1).generate(reqs[3:4] + reqs[1:2], ctx))
    # same seed, different batch neighbours → the same image (CPU float kernels may round one
    # uint8 level apart on rare pixels: batch-size-dependent matmul blocking)
    for one, many in ((singles[0], batched[3]), (singles[1], batched[1])):
        assert np.abs(one - many).max() <= 1
        assert (one == many).mean() > 0.98
    assert np.abs(batched[0] - batched[1]).mean() > 1  # different seeds, different images
    again = arrays(gen(tiny_sd, batch_size=3).generate(reqs[:1], ctx))
    assert np.abs(again[0] - batched[0]).max() <= 1


def test_fingerprint_names_weights_by_content_not_by_path_or_device(tiny_sd, tmp_path, ctx):
    import shutil

    a = gen(tiny_sd).fingerprint(ctx)
    assert "digest" in a["params"]["model"] and str(tiny_sd) not in str(a)
    assert gen(tiny_sd, device="cpu", batch_size=7).fingerprint(ctx) == a
    copy = shutil.copytree(tiny_sd, tmp_path / "moved")
    assert gen(copy).fingerprint(ctx) == a  # moving weights keeps keys
    assert gen(tiny_sd, steps=4).fingerprint(ctx) != a
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert gen(copy).fingerprint(ctx) != a  # changing weights changes keys
    hub = DiffusersImageGenerator(model="org/some-model", revision="v2").fingerprint(ctx)
    assert hub["params"]["model"] == {"hub": "org/some-model", "revision": "v2"}


@pytest.mark.timeout(60)
def test_absent_hub_weights_fail_fast_offline_with_a_hint(ctx, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    g = DiffusersImageGenerator(model="runwayml/stable-diffusion-v1-5")
    with no_network() as attempts, pytest.raises(MissingWeightsError) as exc:
        g.generate(requests(1), ctx)
    assert attempts == []
    text = str(exc.value)
    assert "runwayml/stable-diffusion-v1-5" in text and "huggingface-cli download" in text and "offline" in text


def test_absent_local_path_and_unet_override_name_what_is_missing(tiny_sd, tmp_path, ctx):
    with pytest.raises(MissingWeightsError, match="does not exist"):
        DiffusersImageGenerator(model=str(tmp_path / "nowhere")).generate(requests(1), ctx)
    with pytest.raises(MissingWeightsError, match="mhdang/dpo-sd1.5-text2image-v1"):
        gen(tiny_sd, unet="mhdang/dpo-sd1.5-text2image-v1").generate(requests(1), ctx)


def test_unet_override_swaps_the_denoiser(tiny_sd, tmp_path, ctx):
    from tests.helpers.tiny_pipelines import save_tiny_unet

    other = save_tiny_unet(tmp_path / "dpo_unet", seed=11)
    base = arrays(gen(tiny_sd).generate(requests(2), ctx))
    swapped_gen = gen(tiny_sd, unet=str(other))
    swapped = arrays(swapped_gen.generate(requests(2), ctx))
    assert np.abs(base[0] - swapped[0]).mean() > 1
    assert swapped_gen.fingerprint(ctx)["params"]["unet"]["digest"] != gen(tiny_sd).fingerprint(ctx)["params"]["unet"]


def test_scheduler_swap_and_typos(tiny_sd, ctx):
    g = gen(tiny_sd, scheduler="EulerDiscreteScheduler")
    assert type(g.pipeline(ctx).scheduler).__name__ == "EulerDiscreteScheduler"
    with pytest.raises(UserError, match="DDIMSchedular"):
        gen(tiny_sd, scheduler="DDIMSchedular").generate(requests(1), ctx)


def test_video_generator_returns_uint8_frames_per_item(tmp_path, ctx):
    from tests.helpers.tiny_pipelines import save_tiny_video

    model = save_tiny_video(tmp_path / "video")
    g = DiffusersVideoGenerator(model=str(model), steps=2, height=32, width=32, num_frames=3, batch_size=2)
    videos = g.generate(requests(3), ctx)
    assert [v.shape for v in videos] == [(3, 32, 32, 3)] * 3 and all(v.dtype == np.uint8 for v in videos)
    alone = g.generate(requests(3)[2:], ctx)[0]
    assert np.abs(alone.astype(int) - videos[2].astype(int)).max() <= 1


def test_video_to_uint8_accepts_the_layouts_pipelines_return():
    from PIL import Image

    floats = np.linspace(0, 1, 2 * 5 * 6 * 3).reshape(2, 5, 6, 3)
    expected = np.round(floats * 255).astype(np.uint8)
    assert np.array_equal(video_to_uint8(floats), expected)
    assert np.array_equal(video_to_uint8(floats.transpose(0, 3, 1, 2)), expected)  # T×C×H×W
    pil = [Image.fromarray(f) for f in expected]
    assert np.array_equal(video_to_uint8(pil), expected)
    with pytest.raises(ValueError, match="4-d"):
        video_to_uint8(np.zeros((4, 4, 3)))
