"""Email templates: sandboxed Jinja2 rendering, save-time validation, the shipped set.

HTML parts render in a `SandboxedEnvironment` with autoescape switched on explicitly (the
sandbox's default is off) and `StrictUndefined`, so a missing variable is an error and not
an empty string. Subjects and text parts render in a second sandbox without HTML escaping
(an `&` in an artist's name stays an `&`); a rendered subject with CR or LF is refused
(header injection). CSS is inlined by css-inline; a text part is derived from the HTML
when a template has none.

Templates live in `notify.email_templates` (versioned per name and locale; the newest
version wins) and fall back to the ones shipped in `shipped_templates/` beside this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import css_inline
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, select_autoescape
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

# Every render gets these; a template may use them without declaring them.
STANDARD_VARIABLES = frozenset({"user_name", "app_url", "unsubscribe_url", "title", "message"})
_SHIPPED = "shipped_templates"  # beside this file

LAYOUT_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1d1d1f; }
h1, h2 { color: #111; }
a.button { display: inline-block; padding: 10px 18px; background: #6d28d9; color: #fff;
           border-radius: 6px; text-decoration: none; }
p.footer { color: #777; font-size: 12px; margin-top: 32px; }
"""


class TemplateProblem(ValueError):
    """A template cannot be saved or rendered; `line` when the source says where."""

    def __init__(self, message: str, *, part: str, line: int | None = None) -> None:
        super().__init__(message)
        self.part = part
        self.line = line


html_env = SandboxedEnvironment(
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
)
text_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_inliner = css_inline.CSSInliner(keep_style_tags=False)


@dataclass(frozen=True)
class TemplateSource:
    name: str
    locale: str
    version: int  # 0: the shipped one
    category: str
    subject: str
    html: str
    text: str | None
    variables: tuple[str, ...]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def _variables_of(env: SandboxedEnvironment, source: str, part: str) -> set[str]:
    try:
        return set(meta.find_undeclared_variables(env.parse(source)))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"{part}: {exc.message}", part=part, line=exc.lineno) from None


def _first_line_using(source: str, name: str) -> int | None:
    for number, line in enumerate(source.splitlines(), start=1):
        if name in line:
            return number
    return None


def validate(
    subject: str, html: str, text: str | None, declared: list[str] | tuple[str, ...]
) -> None:
    """Refuse a template with a syntax error or a variable it does not declare (naming the
    part and the line), or a subject spanning lines."""
    if "\r" in subject.strip() or "\n" in subject.strip():
        raise TemplateProblem("subject: must be one line", part="subject", line=2)
    allowed = STANDARD_VARIABLES | set(declared)
    for part, env, source in (
        ("subject", text_env, subject),
        ("html", html_env, html),
        ("text", text_env, text),
    ):
        if source is None:
            continue
        undeclared = sorted(_variables_of(env, source, part) - allowed)
        if undeclared:
            raise TemplateProblem(
                f"{part}: variable {undeclared[0]!r} is not declared",
                part=part,
                line=_first_line_using(source, undeclared[0]),
            )


@cache
def shipped(name: str) -> TemplateSource | None:
    """The template shipped with the code (None when there is none of that name)."""
    from mysetlist.notify.catalog import TYPES

    folder = resources.files("mysetlist.notify").joinpath(_SHIPPED)
    html_file = folder.joinpath(f"{name}.html")
    if not html_file.is_file():
        return None
    subject = folder.joinpath(f"{name}.subject.txt").read_text(encoding="utf-8").strip()
    html = html_file.read_text(encoding="utf-8")
    text_file = folder.joinpath(f"{name}.txt")
    text = text_file.read_text(encoding="utf-8") if text_file.is_file() else None
    used = _variables_of(text_env, subject, "subject") | _variables_of(html_env, html, "html")
    category = next((t.category for t in TYPES.values() if t.template == name), "marketing")
    return TemplateSource(
        name, "en", 0, category, subject, html, text, tuple(sorted(used - STANDARD_VARIABLES))
    )


def shipped_names() -> list[str]:
    folder = resources.files("mysetlist.notify").joinpath(_SHIPPED)
    return sorted(
        entry.name.removesuffix(".html")
        for entry in folder.iterdir()
        if entry.name.endswith(".html")
    )


@cache
def _compiled(source: TemplateSource) -> tuple[Any, Any, Any]:
    return (
        text_env.from_string(source.subject),
        html_env.from_string(source.html),
        text_env.from_string(source.text) if source.text is not None else None,
    )


def render(
    source: TemplateSource, variables: dict[str, Any], *, footer_html: str = ""
) -> RenderedEmail:
    """Subject, inlined HTML and text of `source` with `variables`."""
    subject_t, html_t, text_t = _compiled(source)
    try:
        subject = subject_t.render(variables).strip()
        body = html_t.render(variables)
        text = text_t.render(variables) if text_t is not None else None
    except UndefinedError as exc:
        raise TemplateProblem(f"missing variable: {exc.message}", part="variables") from None
    except SecurityError as exc:
        raise TemplateProblem(f"refused by the sandbox: {exc}", part="html") from None
    if "\r" in subject or "\n" in subject:
        raise TemplateProblem("subject: a variable put a line break in it", part="subject")
    document = (
        f"<html><head><style>{LAYOUT_CSS}</style></head><body>{body}{footer_html}</body></html>"
    )
    html = _inliner.inline(document)
    return RenderedEmail(subject, html, text if text is not None else html_to_text(body))


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "li", "tr", "br", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li":
            self.parts.append("\n- ")
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href:
            self.parts.append(f" ({self._href})")
            self._href = None
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """A readable plain-text part from HTML: blocks on their own lines, links kept."""
    parser = _TextExtractor()
    parser.feed(html)
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"
