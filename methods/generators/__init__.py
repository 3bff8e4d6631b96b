"""Generator plugins: diffusers text-to-image and text-to-video pipelines (hub id or local path)."""
