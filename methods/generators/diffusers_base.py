"""What the diffusers image and video generators share: parameters, loading, swaps, seeding.

Loading order: the base pipeline (hub id or local path) → an optional UNet override (the
DiffusionDPO baseline's public UNets) → an optional diffusers-format LoRA (fused) → ganrm-bench
fine-tuning results (`finetuned`, merged in order: round 1, round 2, ...) → the sampler.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import Field

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.plugins.base import Generator, PluginParams, SampleRequest
from ganrm_bench.harness.runtime import memory, random_weights
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.harness.store.assets import ref_asset
from ganrm_bench.harness.store.hub import is_local, local_path
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.methods.finetune.diffusers_adapter import DiffusersDenoiser
from ganrm_bench.methods.finetune.weights import apply_weights
from ganrm_bench.methods.generators import loading, random_init
from ganrm_bench.methods.generators.estimate import diffusers_unit_cost

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store


class DiffusersParams(PluginParams):
    model: str = Field(description="hub id (e.g. runwayml/stable-diffusion-v1-5) or local directory of a diffusers pipeline")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    variant: str | None = Field(None, description="weights variant, e.g. fp16")
    cache_dir: str | None = Field(None, description="HF cache directory (default: HF_HOME's)")
    scheduler: str | None = Field(None, description="sampler: a diffusers scheduler class name, e.g. DDIMScheduler")
    scheduler_kwargs: dict[str, Any] = Field(default_factory=dict, description="overrides of the scheduler config")
    steps: int = Field(50, ge=1, description="denoising steps")
    guidance: float = Field(7.5, description="classifier-free guidance scale")
    negative_prompt: str | None = None
    height: int | None = Field(None, ge=8, description="output height (default: the pipeline's)")
    width: int | None = Field(None, ge=8, description="output width (default: the pipeline's)")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 on CUDA (float16 on GPUs without it), float32 on CPU; in the key as resolved")
    device: str | None = Field(None, description="torch device (default: the run's)")
    batch_size: int = Field(4, ge=1, description="requests per pipeline call (does not change outputs)")
    unet: str | None = Field(None, description="UNet override: hub id or path, e.g. mhdang/dpo-sd1.5-text2image-v1")
    unet_subfolder: str | None = Field("unet", description="subfolder of `unet` holding the UNet (ignored if absent locally)")
    unet_revision: str | None = None
    unet_variant: str | None = Field(None, description="weights variant of the UNet override (the public DPO UNets have none)")
    lora: str | None = Field(None, description="a diffusers-format LoRA (file, directory or hub id), fused into the UNet")
    lora_scale: float = 1.0
    finetuned: tuple[str, ...] = Field((), description="ganrm-bench fine-tuning outputs (weights dirs), merged in order")
    safety_checker: bool = Field(False, description="keep the pipeline's NSFW filter (it blacks images out, which skews FID and safety metrics)")
    call_kwargs: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for the pipeline call")


class DiffusersGeneratorBase(Generator):
    Params = DiffusersParams
    #: the pipeline class used to load; DiffusionPipeline picks the right one from model_index.json
    pipeline_class: str = "DiffusionPipeline"
    #: params that never change outputs, so they stay out of the fingerprint
    _not_identity = ("device", "batch_size")

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._pipe = None
        self._store: Store | None = None

    # -- identity ------------------------------------------------------------------------------
    def fingerprint(self, ctx: "Context | None" = None) -> dict[str, Any]:
        """Params with every weights reference replaced by its identity (local-path content digest,
        memoized by the run's store; or hub id + resolved commit), so moving a directory keeps keys
        and changing weights changes them."""
        p = self.params
        store = ctx.store if ctx is not None else self._store
        params = p.model_dump(mode="json", exclude=set(self._not_identity) | {"model", "unet", "lora", "finetuned", "cache_dir"})
        params["dtype"] = self.dtype_name(ctx)  # "auto" keys as what it resolves to on this run's device
        if random_weights.active():  # run --random-weights: the shipped configs stand for the weights
            self._refuse_lora_with_random_weights()
            params["model"] = random_init.identity(p.model)
            params["unet"] = None if p.unet is None else {**random_init.identity(p.model), "unet_override": p.unet}
            params["lora"] = None
            params["finetuned"] = [loading.weights_identity(f, store=store) for f in p.finetuned]
            return {"plugin": self.name, "version": self.version, "params": params}
        params["model"] = loading.weights_identity(p.model, revision=p.revision, cache_dir=p.cache_dir, store=store)
        params["unet"] = loading.weights_identity(p.unet, revision=p.unet_revision, cache_dir=p.cache_dir, store=store)
        params["lora"] = loading.weights_identity(p.lora, cache_dir=p.cache_dir, store=store)
        params["finetuned"] = [loading.weights_identity(f, store=store) for f in p.finetuned]
        return {"plugin": self.name, "version": self.version, "params": params}

    # -- assets (harness.store.assets) ---------------------------------------------------------------
    def estimate_unit(self, ctx: "Context | None" = None):
        """plan --estimate: seconds per image on a random-init UNet of the shipped config (None: no config)."""
        return diffusers_unit_cost(self.params, ctx) if self.modality == "image" else None

    def assets(self) -> list:
        """The pipeline, the UNet override and the LoRA (fine-tuning results are the harness's own)."""
        p = self.params
        v = f".{p.variant}" if p.variant else ""
        out = [ref_asset(p.model, looks_local=is_local, files=("model_index.json",), revision=p.revision,
                         cache_dir=p.cache_dir, what=f"diffusers pipeline {p.model}",
                         patterns=("model_index.json", "*/*.json", "*/*.txt", f"*/diffusion_pytorch_model{v}.safetensors",
                                   f"*/diffusion_pytorch_model{v}.bin", f"*/model{v}.safetensors", f"*/pytorch_model{v}.bin"))]
        if p.unet is not None:
            sub = f"{p.unet_subfolder}/" if p.unet_subfolder else ""
            uv = f".{p.unet_variant}" if p.unet_variant else ""
            out.append(ref_asset(p.unet, looks_local=is_local, files=(f"{sub}config.json",), revision=p.unet_revision,
                                 cache_dir=p.cache_dir, subfolder=p.unet_subfolder, what=f"UNet override {p.unet}",
                                 patterns=(f"{sub}config.json", f"{sub}diffusion_pytorch_model{uv}.safetensors",
                                           f"{sub}diffusion_pytorch_model{uv}.bin")))
        if p.lora is not None:
            out.append(ref_asset(p.lora, looks_local=is_local, cache_dir=p.cache_dir, what=f"LoRA {p.lora}",
                                 patterns=("*.safetensors", "*.json")))
        return out

    # -- loading -------------------------------------------------------------------------------
    def pipeline(self, ctx: "Context | None" = None):
        """The loaded pipeline (cached on this instance while the nodes that sample with it run;
        `harness.runtime.memory` drops it when a later node loads other models)."""
        memory.claim(("pipeline", id(self)), self._release_pipeline)
        if self._pipe is None:
            if ctx is not None:
                self._store = ctx.store
            self._pipe = self.load_pipeline(ctx)
        return self._pipe

    def _release_pipeline(self) -> None:
        self._pipe = None

    def device(self, ctx: "Context | None") -> str:
        return resolve_device(self.params.device or (ctx.device if ctx is not None else "auto"))

    def dtype_name(self, ctx: "Context | None", device: str | None = None) -> str:
        """The dtype the pipeline loads in on its device (`dtype: auto` resolved, loading.resolve_dtype)."""
        return loading.resolve_dtype(self.params.dtype, device or self.device(ctx))

    def _refuse_lora_with_random_weights(self) -> None:
        if self.params.lora is not None:
            raise UserError(f"--random-weights: generator {self.params.model!r} fuses the LoRA {self.params.lora!r}, "
                            "which has no architecture config to build it from",
                            hint="drop `lora` for the smoke run (--set generators.<name>.lora=null) or run without --random-weights")

    def _random_pipeline(self, ctx: "Context | None", device: str | None):
        """run --random-weights: the pipeline built from the shipped configs (random UNet override too)."""
        p = self.params
        self._refuse_lora_with_random_weights()
        pipe = random_init.build_pipeline(p.model, loading.torch_dtype(self.dtype_name(ctx, device)), unet_override=p.unet)
        if p.scheduler is not None:
            loading.scheduler_class(p.scheduler)
        return pipe

    def load_pipeline(self, ctx: "Context | None" = None, *, device: str | None = None):
        """A fresh pipeline with every swap applied (not cached: fine-tuning takes private copies)."""
        import diffusers

        p = self.params
        if random_weights.active():
            return self._finish_pipeline(self._random_pipeline(ctx, device), ctx, device)
        offline = ctx is None or is_offline(ctx)
        dtype = loading.torch_dtype(self.dtype_name(ctx, device))
        common = dict(torch_dtype=dtype, local_files_only=offline, cache_dir=p.cache_dir)
        loading.check_available(p.model, revision=p.revision, cache_dir=p.cache_dir, offline=offline)
        if p.scheduler is not None:
            loading.scheduler_class(p.scheduler)  # a typo fails before minutes of weight loading
        extra: dict[str, Any] = {}
        if p.unet is not None:
            extra["unet"] = self._load_unet(offline, common)
        if not p.safety_checker and "safety_checker" in loading.model_index(p.model, p.revision, p.cache_dir):
            extra.update(safety_checker=None, requires_safety_checker=False)
        cls = getattr(diffusers, self.pipeline_class)
        source = str(local_path(p.model)) if is_local(p.model) else p.model
        try:
            pipe = cls.from_pretrained(source, revision=p.revision, variant=p.variant, **common, **extra)
        except (OSError, ValueError) as exc:
            raise loading.as_missing_weights(p.model, exc) from exc
        if p.lora is not None:
            self._fuse_lora(pipe, offline)
        return self._finish_pipeline(pipe, ctx, device)

    def _finish_pipeline(self, pipe, ctx: "Context | None", device: str | None):
        """Fine-tuning results merged in order, the sampler, quiet progress, the device."""
        p = self.params
        if p.finetuned:
            for weights_dir in p.finetuned:
                apply_weights(pipe.unet, weights_dir)
        if p.scheduler is not None:
            sched_cls = loading.scheduler_class(p.scheduler, getattr(pipe.scheduler, "compatibles", None))
            pipe.scheduler = sched_cls.from_config(pipe.scheduler.config, **p.scheduler_kwargs)
        elif p.scheduler_kwargs:
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **p.scheduler_kwargs)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device or self.device(ctx))

    def _load_unet(self, offline: bool, common: dict[str, Any]):
        import diffusers

        p = self.params
        subfolder = p.unet_subfolder
        if is_local(p.unet):
            path = local_path(p.unet)
            if subfolder and not (path / subfolder).exists():
                subfolder = None
            source = str(path)
        else:
            source = p.unet
        loading.check_available(p.unet, revision=p.unet_revision, cache_dir=p.cache_dir, offline=offline,
                                index_file="config.json", subfolder=subfolder, what="UNet")
        try:
            return diffusers.AutoModel.from_pretrained(source, subfolder=subfolder, revision=p.unet_revision,
                                                       variant=p.unet_variant, **common)
        except (OSError, ValueError) as exc:
            raise loading.as_missing_weights(p.unet, exc, "UNet") from exc

    def _fuse_lora(self, pipe, offline: bool) -> None:
        p = self.params
        source = str(local_path(p.lora)) if is_local(p.lora) else p.lora
        if is_local(p.lora) and not Path(source).exists():
            raise MissingWeightsError(p.lora, f"local path {source} does not exist", loading.how_to_provide(p.lora, "LoRA"))
        if not hasattr(pipe, "load_lora_weights"):
            raise UserError(f"pipeline {type(pipe).__name__} of {p.model!r} does not support LoRA weights (param lora)")
        try:
            pipe.load_lora_weights(source, adapter_name="lora", local_files_only=offline, cache_dir=p.cache_dir)
        except (OSError, ValueError) as exc:
            raise loading.as_missing_weights(p.lora, exc, "LoRA") from exc
        pipe.fuse_lora(lora_scale=p.lora_scale, adapter_names=["lora"])
        pipe.unload_lora_weights()

    # -- sampling ------------------------------------------------------------------------------
    def nfe_per_sample(self) -> int:
        """UNet evaluations per sample: one per step (second-order Heun / KDPM2 samplers: 2·steps − 1),
        twice that with classifier-free guidance (diffusers guides when guidance_scale > 1)."""
        p = self.params
        evals = 2 * p.steps - 1 if (p.scheduler or "").startswith(("Heun", "KDPM2")) else p.steps
        return evals * (2 if p.guidance > 1 else 1)

    def generate(self, requests: Sequence[SampleRequest], ctx: "Context") -> list:
        """Outputs in request order; each depends on its request's seed alone (one torch.Generator
        per request), so an item is the same in any batch, shard or restart. The generators are CPU
        ones on every device (diffusers draws the initial latents on the CPU and moves them), so a
        pool started on CPU and finished on a GPU has one noise stream under its item keys."""
        import torch

        pipe = self.pipeline(ctx)
        outputs: list = []
        batch = ctx.batch_size or self.params.batch_size
        for start in range(0, len(requests), batch):
            chunk = list(requests[start : start + batch])
            generators = [torch.Generator(device="cpu").manual_seed(int(r.seed)) for r in chunk]
            with torch.inference_mode():
                outputs.extend(self._call(pipe, chunk, generators))
            ctx.count(f"generator:{self.name}:items", len(chunk))
        return outputs

    def call_arguments(self, chunk: Sequence[SampleRequest], generators: list) -> dict[str, Any]:
        p = self.params
        kwargs: dict[str, Any] = dict(
            prompt=[r.prompt.text for r in chunk], num_inference_steps=p.steps, guidance_scale=p.guidance,
            generator=generators, **p.call_kwargs,
        )
        if p.negative_prompt is not None:
            kwargs["negative_prompt"] = [p.negative_prompt] * len(chunk)
        if p.height is not None:
            kwargs["height"] = p.height
        if p.width is not None:
            kwargs["width"] = p.width
        return kwargs

    def _call(self, pipe, chunk: Sequence[SampleRequest], generators: list) -> list:
        raise NotImplementedError

    # -- fine-tuning hooks (methods.finetune.protocol.FineTunableGenerator) ----------------------
    def finetune_model(self, ctx: "Context | None" = None, *, device: str | None = None, resolution: int | None = None):
        """A private copy of the pipeline wrapped for fine-tuning (the sampling pipeline is untouched)."""
        return DiffusersDenoiser(self.load_pipeline(ctx, device=device), height=self.params.height,
                                 width=self.params.width, resolution=resolution)

    def with_finetuned(self, weights_dir: str | Path) -> "DiffusersGeneratorBase":
        """This generator with one more fine-tuning result merged into its UNet."""
        params = self.params.model_copy(update={"finetuned": (*self.params.finetuned, str(weights_dir))})
        clone = type(self)(params)
        clone._store = self._store
        return clone
