"""Post-training of diffusion generators: Diffusion-DPO and SFT (RAFT-style) through accelerate.

`protocol` says what a generator must expose to be fine-tuned (adapters: `diffusers_adapter` for
images, `video_adapter` for text-to-video 3-D UNets, `adapters` to pick one); `objectives` holds the losses (one module per objective behind one protocol);
`train` the loop (LoRA via peft by default, checkpoints, resume, per-step logs); `weights` the
saved result (safetensors + JSON) and how to apply it to a generator's UNet.
"""
