"""Templates (Jinja2, autoescaped) and Markdown (markdown-it-py with raw HTML disabled)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from markdown_it import MarkdownIt
from markupsafe import Markup

from truthset.domain import readable_size

TEMPLATES_DIR = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        # Links in instructions open in a new tab: following one must not leave the workbench.
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def markdown(text: str | None) -> Markup:
    """Markdown to HTML. Raw HTML in the source is escaped, and markdown-it refuses
    ``javascript:``, ``vbscript:``, ``file:`` and non-image ``data:`` links, so the output is safe."""
    return Markup(_markdown().render(text or ""))


def _may(session: Any, action: str) -> bool:
    """In templates: whether the signed-in member's role may take a policy action (the nav links)."""
    from truthset.services.policy import Action, allowed

    return session is not None and allowed(session.principal, Action(action))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["markdown"] = markdown
    env.filters["size"] = readable_size
    env.globals["may"] = _may
    return env


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    from truthset import __version__

    context.setdefault("session", getattr(request.state, "truthset_session", None))
    html = environment().get_template(template).render(request=request, version=__version__, **context)
    return HTMLResponse(html, status_code=status_code)
