"""The study's web app (Starlette). Only an invitation link starts a rater's session: `/join/<token>`
asks for a click, and the POST that follows sets a session cookie (HttpOnly, SameSite=Strict). Each
screen shows one presentation — a prompt and two samples, sides drawn per presentation — and the
answer is left / right / tie by click or keyboard. Pages carry nothing that names a row: a random id
of the presentation, the session's CSRF token and two image handles random to this session and
presentation, which the server maps to store items. Every POST needs the session's CSRF token and
our own Origin (security.Guard); a vote once cast is never changed."""

from __future__ import annotations

import hmac
import logging
from functools import lru_cache
from pathlib import Path

from ganrm_bench.harness.app.study.db import AlreadyVoted, Session, StudyDB, new_token
from ganrm_bench.harness.app.study.files import png_of
from ganrm_bench.harness.app.study.pairs import Study
from ganrm_bench.harness.app.study.security import Guard

log = logging.getLogger("ganrm_bench")

COOKIE = "ganrm_study_session"
JOIN_COOKIE = "ganrm_study_join"
CHOICES = ("left", "right", "tie")
HERE = Path(__file__).parent
STATIC = {"study.css": "text/css; charset=utf-8", "study.js": "text/javascript; charset=utf-8"}


def create_app(study: Study, db: StudyDB, *, hosts: set[str] | list[str], title: str = "Which image is better?",
               admin_token: str | None = None, admin_view=None):
    """The study's ASGI app: Starlette routes behind the Guard middleware. `hosts`: the Host
    headers it answers to; `admin_token`: the secret of `/admin/<token>` (no such page without it),
    which shows `admin_view()` (a text)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    h = _Handlers(study, db, title, admin_token, admin_view)
    app = Starlette(
        routes=[Route("/", h.index), Route("/join/{token}", h.join_page), Route("/join", h.join, methods=["POST"]),
                Route("/leave", h.leave, methods=["POST"]), Route("/vote", h.vote, methods=["POST"]),
                Route("/img/{handle}", h.image), Route("/static/{name}", h.static), Route("/admin/{token}", h.admin)],
        exception_handlers={404: h.not_found, 405: h.not_allowed},
    )
    return Guard(app, hosts)


def _text(message: str, status: int):
    from starlette.responses import PlainTextResponse

    return PlainTextResponse(message, status_code=status, headers={"Cache-Control": "no-store"})


class _Handlers:
    """The study's routes over one study and its database."""

    def __init__(self, study: Study, db: StudyDB, title: str, admin_token: str | None, admin_view):
        import jinja2

        self.study, self.db, self.title = study, db, title
        self.admin_token, self.admin_view = admin_token, admin_view
        self.pairs = study.by_id()
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
        self.page = env.get_template("study.html.j2")
        self.static_files = {name: (HERE / "static" / name).read_bytes() for name in STATIC}
        self.png = lru_cache(maxsize=512)(lambda key: png_of(self.study.images[key]))

    def html(self, status: int = 200, **kw):
        from starlette.responses import HTMLResponse

        return HTMLResponse(self.page.render(title=self.title, **kw), status_code=status, headers={"Cache-Control": "no-store"})

    def session_of(self, request) -> Session | None:
        return self.db.session(request.cookies.get(COOKIE))

    @staticmethod
    async def form_fields(request, *names: str) -> dict[str, str] | None:
        try:
            form = await request.form()
        except Exception:  # malformed body: the caller answers 400
            return None
        values = {n: form.get(n) for n in names}
        return values if all(isinstance(v, str) for v in values.values()) else None

    async def checked_post(self, request, *names: str):
        """(session, fields) of a POST with the session's CSRF token, or (None, the refusal)."""
        session = self.session_of(request)
        if session is None:
            return None, _text("no session: open the invitation link you were given", 401)
        fields = await self.form_fields(request, "csrf", *names)
        if fields is None:
            return None, _text(f"this form needs the fields {', '.join(names)}", 400)
        if not hmac.compare_digest(fields["csrf"].encode(), session.csrf.encode()):
            return None, _text("refused: the form's token is not this session's (reload the page)", 403)
        return session, fields

    # -- pages ------------------------------------------------------------------------------------
    def index(self, request):
        session = self.session_of(request)
        if session is None:
            return self.html(401, view="invited_only")
        shown = self.db.present(session.rater_id, self.study.next_pair, self.pairs)
        progress = {"done": self.db.vote_count(session.rater_id), "total": self.study.per_rater}
        if shown is None:
            return self.html(view="done", rater=session.name, csrf=session.csrf, progress=progress)
        left, right = self.db.handles(session.session, shown)
        pair = self.pairs[shown.pair_id]
        return self.html(view="pair", rater=session.name, csrf=session.csrf, progress=progress, shown=shown.shown_id,
                         prompt=pair.prompt or pair.prompt_id or "", left=left, right=right)

    def join_page(self, request):
        from starlette.responses import HTMLResponse

        rater = self.db.rater_by_invite(request.path_params["token"])
        if rater is None:
            return self.html(404, view="invited_only", error="This invitation link is not valid.")
        current = self.session_of(request)
        nonce = new_token()
        resp: HTMLResponse = self.html(view="join", name=rater[1], invite=request.path_params["token"], csrf=nonce,
                                       current=current.name if current and current.rater_id != rater[0] else None)
        resp.set_cookie(JOIN_COOKIE, nonce, max_age=3600, path="/join", httponly=True, samesite="strict")
        return resp

    async def join(self, request):
        from starlette.responses import RedirectResponse

        fields = await self.form_fields(request, "invite", "csrf")
        nonce = request.cookies.get(JOIN_COOKIE)
        if fields is None or not nonce or not hmac.compare_digest(fields["csrf"].encode(), nonce.encode()):
            return _text("refused: open your invitation link and press Start", 403)
        rater = self.db.rater_by_invite(fields["invite"])
        if rater is None:
            return self.html(404, view="invited_only", error="This invitation link is not valid.")
        old = self.session_of(request)
        if old is not None:
            self.db.end_session(old.session)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, self.db.start_session(rater[0]), max_age=90 * 24 * 3600, path="/", httponly=True, samesite="strict")
        resp.delete_cookie(JOIN_COOKIE, path="/join")
        return resp

    async def leave(self, request):
        from starlette.responses import RedirectResponse

        session, refusal = await self.checked_post(request)
        if session is None:
            return refusal
        self.db.end_session(session.session)
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def vote(self, request):
        from starlette.responses import RedirectResponse

        session, fields = await self.checked_post(request, "shown", "choice")
        if session is None:
            return fields
        if fields["choice"] not in CHOICES:
            return _text("a vote needs the field choice: left, right or tie", 400)
        try:
            self.db.vote(session.rater_id, fields["shown"], fields["choice"])
        except KeyError:
            return _text("that pair was not shown to you", 403)
        except AlreadyVoted:
            return _text("you already voted on that pair (votes are final)", 409)
        return RedirectResponse("/", status_code=303)

    # -- files ------------------------------------------------------------------------------------
    def image(self, request):
        from starlette.responses import Response

        session = self.session_of(request)
        if session is None:
            return _text("no session", 401)
        key = self.db.image_of(session.session, request.path_params["handle"])
        if key is None or key not in self.study.images:
            return _text("not found", 404)
        try:
            data = self.png(key)
        except Exception as exc:  # an unreadable or swapped file: logged for the operator, a plain 404 for the rater
            log.warning("study: cannot serve a sample (%s: %s)", type(exc).__name__, exc)
            return _text("not found", 404)
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    def static(self, request):
        from starlette.responses import Response

        name = request.path_params["name"]
        if name not in self.static_files:
            return _text("not found", 404)
        return Response(self.static_files[name], media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    def admin(self, request):
        token = request.path_params["token"]
        if not self.admin_token or self.admin_view is None or not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return _text("not found", 404)
        return self.html(view="admin", report=self.admin_view())

    async def not_found(self, request, exc):
        return _text("not found", 404)

    async def not_allowed(self, request, exc):
        return _text("method not allowed", 405)
