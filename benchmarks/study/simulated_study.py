"""A study run by two simulated raters in headless Chromium, then `study results` and a screenshot
of report.html (with its human-study section):

    python benchmarks/study/simulated_study.py reports/runs/<mini table1 run> --rows base,dpo --pairs 40 --shot study-report.png

The raters are bots, not people: each picks the sample with more contrast (pixel standard deviation
in a canvas); bob answers at random 20% of the time. Needs the `study` extra and Debian's chromium
and chromium-driver."""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

CONTRAST_JS = """return [...document.images].map(i=>{const c=document.createElement('canvas');c.width=i.naturalWidth;
c.height=i.naturalHeight;const x=c.getContext('2d');x.drawImage(i,0,0);const d=x.getImageData(0,0,c.width,c.height).data;
let s=0,q=0,m=0;for(let k=0;k<d.length;k+=4){const g=(d[k]+d[k+1]+d[k+2])/3;s+=g;q+=g*g;m++;}return Math.sqrt(q/m-(s/m)**2);})"""


def chromium(width: int = 1000, height: int = 1250):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    try:
        return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    except Exception:  # a cold Chromium start on a busy machine can miss the driver's deadline once
        time.sleep(2)
        return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def vote_all(link: str, name: str, flip: float) -> int:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    rng, d, votes = random.Random(name), chromium(), 0
    try:
        d.get(link)  # the rater's invitation link
        d.find_element("id", "start").click()
        while not d.find_elements("id", "done"):
            left, right = d.execute_script(CONTRAST_JS)
            choice = "left" if left > right else "right"
            if rng.random() < flip:
                choice = rng.choice(["left", "right", "tie"])
            before = d.find_element("id", "progress-text").text
            ActionChains(d).send_keys({"left": Keys.ARROW_LEFT, "right": Keys.ARROW_RIGHT, "tie": Keys.SPACE}[choice]).perform()
            for _ in range(200):
                if d.find_elements("id", "done") or d.find_element("id", "progress-text").text != before:
                    break
                time.sleep(0.05)
            votes += 1
    finally:
        d.quit()
    return votes


def main() -> None:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--rows", default="base,dpo")
    ap.add_argument("--pairs", default="40")
    ap.add_argument("--shot", type=Path, help="write a screenshot of report.html here (128-colour PNG)")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "study"]
    invited = subprocess.run([*cli, "invite", str(args.run), "alice", "bob", "--url", url], check=True, capture_output=True, text=True)
    links = dict(line.split("\t") for line in invited.stdout.splitlines() if "\t" in line)
    server = subprocess.Popen([*cli, "serve", str(args.run), "--rows", args.rows, "--port", str(port), "--max-pairs", args.pairs,
                               "--overlap", args.pairs])
    try:
        for _ in range(600):
            try:
                httpx.get(url)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        for name, flip in (("alice", 0.0), ("bob", 0.2)):
            print(name, vote_all(links[name], name, flip), "votes")
    finally:
        server.terminate()
        server.wait()
    subprocess.run([*cli, "results", str(args.run)], check=True)
    if args.shot:
        from PIL import Image

        d = chromium()
        try:
            d.get((args.run / "report.html").resolve().as_uri())
            time.sleep(1)
            raw = args.shot.with_suffix(".raw.png")
            d.save_screenshot(str(raw))
        finally:
            d.quit()
        Image.open(raw).convert("RGB").quantize(colors=128).save(args.shot, optimize=True)
        raw.unlink()


if __name__ == "__main__":
    main()
