"""Jinja2 pages: one environment, autoescaped; every page gets the person, menu and CSRF token."""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.workbench.domain import access
from services.workbench.sessions import Session

# Autoescaped as Jinja2Templates(directory=...) makes it; compiled once, without a stat of every
# template file on every render (they change only with a release, which restarts the process).
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
        autoescape=jinja2.select_autoescape(),
        auto_reload=False,
    )
)
TEMPLATES.env.globals["htmx_file"] = "vendor/htmx-2.0.11.min.js"


def _percent(value) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


TEMPLATES.env.filters["percent"] = _percent


def page(
    request: Request,
    template: str,
    context: dict | None = None,
    *,
    user: Session | None = None,
    status: int = 200,
    headers: dict | None = None,
) -> HTMLResponse:
    ctx = {
        "user": user,
        "nav": access.navigation(user.roles) if user else [],
        "csrf": user.csrf if user else "",
        "path": request.url.path,
        **(context or {}),
    }
    return TEMPLATES.TemplateResponse(request, template, ctx, status_code=status, headers=headers)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
