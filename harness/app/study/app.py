"""The study's web app (Starlette): a rater names themself once (a secret token in a cookie ties
the browser to the name), then sees one pair at a time — prompt, two samples, sides randomised,
row names hidden — and answers left / right / tie by click or keyboard. Requests never carry a
path: images are looked up by opaque id in the study's own table, votes must name a pair shown to
that rater, and a vote once cast is never changed."""

from __future__ import annotations

import io
import re
from pathlib import Path

from ganrm_bench.harness.app.study.db import AlreadyVoted, StudyDB
from ganrm_bench.harness.app.study.pairs import Study
import numpy as np

COOKIE = "ganrm_study_rater"
NAME_RE = re.compile(r"^[\w][\w .'-]{0,39}$")
CHOICES = ("left", "right", "tie")


def _image_bytes(path: Path) -> tuple[bytes, str]:
    if path.suffix == ".npz":  # a video: its first frame, as PNG
        from PIL import Image

        with np.load(path) as data:
            frame = data["frames"][0]
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, "PNG")
        return buf.getvalue(), "image/png"
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(path.suffix.lower())
    return path.read_bytes(), mime or "application/octet-stream"


def create_app(study: Study, db: StudyDB, *, title: str = "Which image is better?", default_rater: str = ""):
    import jinja2
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    db.add_pairs(study.pairs)
    pairs = study.by_id()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
    page = env.get_template("study.html.j2")

    def html(status: int = 200, **kw) -> HTMLResponse:
        return HTMLResponse(page.render(title=title, **kw), status_code=status)

    def rater_of(request: Request) -> str | None:
        return db.rater_by_token(request.cookies.get(COOKIE))

    async def form_fields(request: Request, *names: str) -> dict[str, str] | None:
        try:
            form = await request.form()
        except Exception:  # malformed body: the caller answers 400
            return None
        values = {n: form.get(n) for n in names}
        return values if all(isinstance(v, str) for v in values.values()) else None

    def index(request: Request):
        rater = rater_of(request)
        if rater is None:
            return html(view="login", default_rater=default_rater)
        done = db.voted_pairs(rater)
        total = len(pairs)
        remaining = [p for p in study.order(rater) if p.pair_id not in done]
        progress = {"done": total - len(remaining), "total": total}
        if not remaining:
            return html(view="done", rater=rater, progress=progress)
        pair = remaining[0]
        (lrow, litem), (rrow, ritem) = study.sides(rater, pair)
        db.record_shown(rater, pair.pair_id, lrow, rrow)
        return html(view="pair", rater=rater, progress=progress, pair=pair, left=litem, right=ritem)

    async def login(request: Request):
        fields = await form_fields(request, "name")
        if fields is None or not NAME_RE.match(fields["name"].strip()):
            return html(400, view="login", default_rater=default_rater,
                        error="A name of 1–40 letters, digits, spaces, dots, dashes or apostrophes, please.")
        name = fields["name"].strip()
        if rater_of(request) == name:
            return RedirectResponse("/", status_code=303)
        token = db.create_rater(name)
        if token is None:
            return html(409, view="login", default_rater="", error=f"The name {name!r} is taken by another browser; pick another.")
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, max_age=90 * 24 * 3600, httponly=True, samesite="strict")
        return resp

    async def logout(request: Request):
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    async def vote(request: Request):
        rater = rater_of(request)
        if rater is None:
            return PlainTextResponse("no rater: open / and give your name first", status_code=401)
        fields = await form_fields(request, "pair", "choice")
        if fields is None or fields["choice"] not in CHOICES:
            return PlainTextResponse("a vote needs the fields pair and choice (left, right or tie)", status_code=400)
        try:
            db.vote(rater, fields["pair"], fields["choice"])
        except KeyError:
            return PlainTextResponse("that pair was not shown to you", status_code=403)
        except AlreadyVoted:
            return PlainTextResponse("you already voted on that pair (votes are final)", status_code=409)
        return RedirectResponse("/", status_code=303)

    def image(request: Request):
        path = study.images.get(request.path_params["image_id"])
        if path is None:
            return PlainTextResponse("not found", status_code=404)
        data, mime = _image_bytes(path)
        return Response(data, media_type=mime, headers={"Cache-Control": "private, max-age=3600"})

    async def not_found(request: Request, exc):
        return PlainTextResponse("not found", status_code=404)

    return Starlette(
        routes=[Route("/", index), Route("/login", login, methods=["POST"]), Route("/logout", logout, methods=["POST"]),
                Route("/vote", vote, methods=["POST"]), Route("/img/{image_id}", image)],
        exception_handlers={404: not_found},
    )
