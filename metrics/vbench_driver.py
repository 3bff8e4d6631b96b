"""Runs inside the vbench virtual environment (not imported by ganrm-bench itself).

    <vbench-env>/bin/python vbench_driver.py job.json

job.json: {"videos": [{"file": "<npz path>", "name": "<mp4 file name>", "prompt": "..."}],
           "video_dir": ..., "output_dir": ..., "name": ..., "dimensions": [...],
           "mode": "custom_input" | "vbench_standard", "device": "cuda" | "cpu", "fps": 8,
           "full_info": null | "<VBench_full_info.json>", "local": false}
Writes the videos as mp4 (OpenCV, a vbench dependency), then calls VBench.evaluate, which saves
<output_dir>/<name>_eval_results.json. Only the standard library, numpy, cv2, torch and vbench
are used here: this file must run on vbench's pinned stack.
"""

import json
import os
import sys

import cv2
import numpy as np


def write_mp4(frames, path, fps):
    t, h, w, _ = frames.shape
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot open an mp4 writer for " + path)
    for frame in frames:
        writer.write(frame[:, :, ::-1].copy())  # RGB -> BGR
    writer.release()


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    os.makedirs(job["video_dir"], exist_ok=True)
    prompts = {}
    for video in job["videos"]:
        with np.load(video["file"]) as data:
            frames = data["frames"]
        write_mp4(frames, os.path.join(job["video_dir"], video["name"]), job.get("fps", 8))
        prompts[video["name"]] = video["prompt"]

    import torch
    import vbench
    from vbench import VBench

    full_info = job.get("full_info") or os.path.join(os.path.dirname(vbench.__file__), "VBench_full_info.json")
    bench = VBench(torch.device(job["device"]), full_info, job["output_dir"])
    kwargs = dict(videos_path=job["video_dir"], name=job["name"], dimension_list=job["dimensions"],
                  local=job.get("local", False), mode=job["mode"])
    if job["mode"] == "custom_input":
        kwargs["prompt_list"] = prompts
    bench.evaluate(**kwargs)


if __name__ == "__main__":
    main(sys.argv[1])
