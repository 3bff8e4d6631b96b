"""What every request and response of the study goes through (an ASGI middleware): the Host
header must be one the study is served under (a DNS-rebinding page names its own host), a POST
must come from our own origin with a small body, and every response carries headers that keep
the pages from being framed, sniffed or made to load anything from elsewhere."""

from __future__ import annotations

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # not no-referrer: with it Chromium sends `Origin: null` on our own forms
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
MAX_BODY = 16 * 1024  # bytes: a vote is under 200


def loopback_hosts(port: int) -> set[str]:
    """The Host headers of this machine's own addresses on `port`."""
    return {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")} | ({"127.0.0.1", "localhost", "[::1]"} if port == 80 else set())


class Guard:
    """ASGI middleware: refuse foreign hosts and cross-origin or oversized POSTs; add the security
    headers to every response."""

    def __init__(self, app, hosts: set[str] | list[str], max_body: int = MAX_BODY):
        self.app, self.hosts, self.max_body = app, {h.lower() for h in hosts}, max_body

    def refusal(self, method: str, headers) -> tuple[int, str] | None:
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return 421, "this study is not served under that host name"
        if method in ("GET", "HEAD"):
            return None
        if headers.get("origin") not in (f"http://{host}", f"https://{host}"):
            return 403, "refused: the request does not come from this study's own pages"
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > self.max_body:
            return 413, f"refused: a request body needs a Content-Length of at most {self.max_body} bytes"
        return None

    async def __call__(self, scope, receive, send):
        from starlette.datastructures import Headers
        from starlette.responses import PlainTextResponse

        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_secured(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []), *[(k, v) for k, v in SECURITY_HEADERS if k not in names]]}
            await send(message)

        problem = self.refusal(scope["method"], Headers(scope=scope))
        if problem is not None:
            return await PlainTextResponse(problem[1], status_code=problem[0])(scope, receive, send_secured)
        await self.app(scope, receive, send_secured)
