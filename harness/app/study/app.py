"""The study's web app (Starlette): a rater names themself once (a secret token in a cookie ties
the browser to the name), then sees one pair at a time — prompt, two samples, sides randomised,
row names hidden — and answers left / right / tie by click or keyboard. Requests never carry a
path: images are looked up by opaque id in the study's own table, votes must name a pair shown to
that rater, and a vote once cast is never changed."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from ganrm_bench.harness.app.study.db import AlreadyVoted, StudyDB
from ganrm_bench.harness.app.study.pairs import Study

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
    """The Starlette app of a study; votes go to `db`."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    db.add_pairs(study.pairs)
    h = _Handlers(study, db, title, default_rater)
    return Starlette(
        routes=[Route("/", h.index), Route("/login", h.login, methods=["POST"]), Route("/logout", h.logout, methods=["POST"]),
                Route("/vote", h.vote, methods=["POST"]), Route("/img/{image_id}", h.image)],
        exception_handlers={404: h.not_found},
    )


class _Handlers:
    """The study's routes over one study and its vote database."""

    def __init__(self, study: Study, db: StudyDB, title: str, default_rater: str):
        import jinja2

        self.study, self.db, self.title, self.default_rater = study, db, title, default_rater
        self.pairs = study.by_id()
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
        self.page = env.get_template("study.html.j2")

    def html(self, status: int = 200, **kw):
        from starlette.responses import HTMLResponse

        return HTMLResponse(self.page.render(title=self.title, **kw), status_code=status)

    def rater_of(self, request) -> str | None:
        return self.db.rater_by_token(request.cookies.get(COOKIE))

    @staticmethod
    async def form_fields(request, *names: str) -> dict[str, str] | None:
        try:
            form = await request.form()
        except Exception:  # malformed body: the caller answers 400
            return None
        values = {n: form.get(n) for n in names}
        return values if all(isinstance(v, str) for v in values.values()) else None

    def index(self, request):
        rater = self.rater_of(request)
        if rater is None:
            return self.html(view="login", default_rater=self.default_rater)
        done = self.db.voted_pairs(rater)
        total = len(self.pairs)
        remaining = [p for p in self.study.order(rater) if p.pair_id not in done]
        progress = {"done": total - len(remaining), "total": total}
        if not remaining:
            return self.html(view="done", rater=rater, progress=progress)
        pair = remaining[0]
        (lrow, litem), (rrow, ritem) = self.study.sides(rater, pair)
        self.db.record_shown(rater, pair.pair_id, lrow, rrow)
        return self.html(view="pair", rater=rater, progress=progress, pair=pair, left=litem, right=ritem)

    async def login(self, request):
        from starlette.responses import RedirectResponse

        fields = await self.form_fields(request, "name")
        if fields is None or not NAME_RE.match(fields["name"].strip()):
            return self.html(400, view="login", default_rater=self.default_rater,
                             error="A name of 1–40 letters, digits, spaces, dots, dashes or apostrophes, please.")
        name = fields["name"].strip()
        if self.rater_of(request) == name:
            return RedirectResponse("/", status_code=303)
        token = self.db.create_rater(name)
        if token is None:
            return self.html(409, view="login", default_rater="", error=f"The name {name!r} is taken by another browser; pick another.")
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, max_age=90 * 24 * 3600, httponly=True, samesite="strict")
        return resp

    async def logout(self, request):
        from starlette.responses import RedirectResponse

        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    async def vote(self, request):
        from starlette.responses import PlainTextResponse, RedirectResponse

        rater = self.rater_of(request)
        if rater is None:
            return PlainTextResponse("no rater: open / and give your name first", status_code=401)
        fields = await self.form_fields(request, "pair", "choice")
        if fields is None or fields["choice"] not in CHOICES:
            return PlainTextResponse("a vote needs the fields pair and choice (left, right or tie)", status_code=400)
        try:
            self.db.vote(rater, fields["pair"], fields["choice"])
        except KeyError:
            return PlainTextResponse("that pair was not shown to you", status_code=403)
        except AlreadyVoted:
            return PlainTextResponse("you already voted on that pair (votes are final)", status_code=409)
        return RedirectResponse("/", status_code=303)

    def image(self, request):
        from starlette.responses import PlainTextResponse, Response

        path = self.study.images.get(request.path_params["image_id"])
        if path is None:
            return PlainTextResponse("not found", status_code=404)
        data, mime = _image_bytes(path)
        return Response(data, media_type=mime, headers={"Cache-Control": "private, max-age=3600"})

    async def not_found(self, request, exc):
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("not found", status_code=404)
