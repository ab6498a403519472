"""Jinja2 rendering with autoescape on (LLM and participant text is untrusted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from web.keys import TEMPLATES

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def environment() -> jinja2.Environment:
    """The template environment; autoescape is on for every template."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render a template to an HTML response."""
    html = request.app[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html")
