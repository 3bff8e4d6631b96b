"""A screenshot of a report page (report.html or compare.html) as a reader sees it: headless
Chromium at a given window size, the first screen, saved as a 128-colour PNG — how
docs/img/report.png was made:

    ganrm-bench report reports/baselines/mini-table1 -f html -o /tmp/mini-table1.html
    python -m benchmarks.report_shot /tmp/mini-table1.html docs/img/report.png

Needs Debian's chromium and chromium-driver and selenium (the `study` extra)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.study.simulated_study import chromium


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args()
    from PIL import Image

    d = chromium(args.width, args.height)
    try:
        d.get(args.page.resolve().as_uri())
        time.sleep(1)
        raw = args.out.with_suffix(".raw.png")
        d.save_screenshot(str(raw))
    finally:
        d.quit()
    Image.open(raw).convert("RGB").quantize(colors=128).save(args.out, optimize=True)
    raw.unlink()


if __name__ == "__main__":
    main()
