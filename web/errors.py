"""JSON errors for the API: every 4xx/5xx under /api/ is ``{"error": {code, message}}``.

HTML pages get a plain error page instead. Unexpected exceptions become a 500
with a generic message; the details go to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from web.render import render

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def api_error(status: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    """An HTTP error whose body is the API's JSON error shape."""
    return status(
        text=web.json_response({"error": {"code": code, "message": message}}).text,
        content_type="application/json",
    )


def error_response(status: int, code: str, message: str) -> web.Response:
    """A JSON error response."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors into JSON for the API and into an error page for HTML routes."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        code = e.reason.lower().replace(" ", "_")
        message = e.text if e.text and e.text != f"{e.status}: {e.reason}" else e.reason
        if _is_api(request):
            return error_response(e.status, code, message)
        return _error_page(request, e.status, e.reason, message)
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        if _is_api(request):
            return error_response(500, "internal_error", "internal error")
        return _error_page(request, 500, "Internal Server Error", "Something went wrong.")


def _error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return render(
        request, "error.html", {"status": status, "title": title, "message": message}, status
    )
