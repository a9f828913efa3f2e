"""Email templates: sandboxed Jinja2 rendering, save-time validation, the shipped set.

HTML parts render in a `SandboxedEnvironment` with autoescape switched on explicitly (the
sandbox's default is off) and `StrictUndefined`, so a missing variable is an error and not
an empty string. Subjects and text parts render in a second sandbox without HTML escaping
(an `&` in an artist's name stays an `&`); a rendered subject with CR or LF is refused
(header injection). CSS is inlined by css-inline; a text part is derived from the HTML
when a template has none.

Templates live in `notify.email_templates` (versioned per name and locale; the newest
version wins) and fall back to the ones shipped in `shipped/` beside this file.

Limits (issue 15: a nested `range` held /healthz for 2.9 s). A template stands alone
(include, import and extends are refused when it is saved). Rendering runs off the event
loop (`render_off_loop`, a worker thread) under a budget the sandbox enforces from inside:
a deadline (`RENDER_SECONDS`) checked at every loop iteration, call and filter, and an
output limit (`MAX_OUTPUT_CHARS`) checked on the streamed output, on every concatenation
and filter result, and before a `*` or `**` could build anything larger. A template that
fails at render ({{ 1/0 }}, range(10**7), too slow, too big) is a TemplateProblem: a 422 at
preview and save (`trial_render`), the failure of its own delivery at send.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import css_inline
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes, select_autoescape
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

# Every render gets these; a template may use them without declaring them.
STANDARD_VARIABLES = frozenset({"user_name", "app_url", "unsubscribe_url", "title", "message"})
_SHIPPED = "shipped"  # beside this file

LAYOUT_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1d1d1f; }
h1, h2 { color: #111; }
a.button { display: inline-block; padding: 10px 18px; background: #6d28d9; color: #fff;
           border-radius: 6px; text-decoration: none; }
p.footer { color: #777; font-size: 12px; margin-top: 32px; }
"""


class TemplateProblem(ValueError):
    """A template cannot be saved or rendered; `line` when the source says where."""

    def __init__(
        self, message: str, *, part: str, line: int | None = None, cause: str | None = None
    ) -> None:
        super().__init__(message)
        self.part = part
        self.line = line
        self.cause = cause  # the Python error a render raised, by name


# Per render; generous for an email (a digest of hundreds of items renders in milliseconds).
RENDER_SECONDS = 2.0
MAX_OUTPUT_CHARS = 1_000_000
MAX_INT_BITS = 100_000
_LOOP_FILTER, _SIZED_FILTER = "_budgeted_loop", "_sized"
# The drain renders inline first, under this much smaller budget: a template that needs
# more is rendered in a worker thread from then on (`delivery/channels.EmailChannel`). Inline, a
# render costs no thread hop, and a thread busy rendering slows the loop's I/O (the GIL).
INLINE_RENDER_SECONDS = 0.05
DEADLINE = "deadline"  # TemplateProblem.cause of a render over its time
_deadline: ContextVar[tuple[float, float] | None] = ContextVar("template_deadline", default=None)


def _tick() -> None:
    budget = _deadline.get()
    if budget is not None and time.monotonic() > budget[0]:
        raise TemplateProblem(
            f"rendering takes longer than {budget[1]:g} s", part="render", cause=DEADLINE
        )


def _sized(value: Any) -> Any:
    _tick()
    if isinstance(value, str | bytes | list | tuple | dict) and len(value) > MAX_OUTPUT_CHARS:
        raise TemplateProblem(
            f"a value grows beyond {MAX_OUTPUT_CHARS:,} characters", part="render"
        )
    return value


def _budgeted_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


def _refuse_huge_widths(args: Iterable[Any]) -> None:
    """center(10**9) and the like would build the string before anything could see it."""
    if any(isinstance(a, int) and not isinstance(a, bool) and a > MAX_OUTPUT_CHARS
           for a in args):  # fmt: skip
        raise TemplateProblem(
            f"a number over {MAX_OUTPUT_CHARS:,} given to a filter or method", part="render"
        )


def _guarded_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja_pass_arg (context/environment passing)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        _refuse_huge_widths([*args, *kwargs.values()])
        return _sized(func(*args, **kwargs))

    return guarded


class _Budgeting(NodeTransformer):
    """Every loop's iterable and every `~` concatenation go through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        visited = self.generic_visit(node)
        assert isinstance(visited, nodes.For)
        visited.iter = nodes.Filter(visited.iter, _LOOP_FILTER, [], [], None, None,
                                    lineno=visited.lineno)  # fmt: skip
        return visited

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        visited = self.generic_visit(node)
        assert isinstance(visited, nodes.Expr)
        return nodes.Filter(visited, _SIZED_FILTER, [], [], None, None, lineno=visited.lineno)


class LimitedSandbox(SandboxedEnvironment):
    """The sandbox, with the render budget enforced from inside (see the module's text)."""

    # Also keeps the compiler from folding 10 ** 10 ** 10 into a constant at save time.
    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guarded_filter(f) for name, f in self.filters.items()}
        self.filters[_LOOP_FILTER] = _budgeted_loop
        self.filters[_SIZED_FILTER] = _sized

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        budgeted: nodes.Template = _Budgeting().visit(tree)
        return budgeted

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and (abs(right) > 1000 or left.bit_length() * abs(right) > MAX_INT_BITS)
        ):
            raise TemplateProblem("a power too large to compute", part="render")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and (len(seq) * times > MAX_OUTPUT_CHARS)
                ):
                    raise TemplateProblem(
                        f"a repetition beyond {MAX_OUTPUT_CHARS:,} items", part="render"
                    )
        result = _sized(super().call_binop(context, operator, left, right))
        if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:  # x = x * x ...
            raise TemplateProblem("a number too large to compute", part="render")
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if isinstance(getattr(__obj, "__self__", None), str):  # "x".center(10**9)
            _refuse_huge_widths([*args, *kwargs.values()])
        return _sized(super().call(__context, __obj, *args, **kwargs))


html_env = LimitedSandbox(
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
)
text_env = LimitedSandbox(autoescape=False, undefined=StrictUndefined)
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


_OTHER_TEMPLATES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def _refuse_other_templates(env: SandboxedEnvironment, source: str, part: str) -> None:
    """A template stands alone: include, import and extends would reach other templates."""
    for node in env.parse(source).find_all(_OTHER_TEMPLATES):
        tag = type(node).__name__.lower().replace("fromimport", "from ... import")
        raise TemplateProblem(f"{part}: {tag} is not allowed", part=part, line=node.lineno)


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
        _refuse_other_templates(env, source, part)  # parses: syntax errors came first
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

    folder = resources.files("mysetlist.notify.templates").joinpath(_SHIPPED)
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
    folder = resources.files("mysetlist.notify.templates").joinpath(_SHIPPED)
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


def _stream(template: Any, variables: dict[str, Any]) -> str:
    """The template's output, stopped as soon as it outgrows the limit."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(variables):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateProblem(f"output beyond {MAX_OUTPUT_CHARS:,} characters", part="render")
        parts.append(chunk)
    return "".join(parts)


def render(
    source: TemplateSource,
    variables: dict[str, Any],
    *,
    footer_html: str = "",
    seconds: float = RENDER_SECONDS,
) -> RenderedEmail:
    """Subject, inlined HTML and text of `source` with `variables`, within the budget
    (blocking: from async code use `render_off_loop`)."""
    token = _deadline.set((time.monotonic() + seconds, seconds))
    part = "subject"
    try:
        subject_t, html_t, text_t = _compiled(source)
        subject = _stream(subject_t, variables).strip()
        part = "html"
        body = _stream(html_t, variables)
        part = "text"
        text = _stream(text_t, variables) if text_t is not None else None
    except TemplateProblem:
        raise
    except UndefinedError as exc:
        raise TemplateProblem(f"missing variable: {exc.message}", part="variables") from None
    except SecurityError as exc:
        raise TemplateProblem(f"refused by the sandbox: {exc}", part=part) from None
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"{part}: {exc.message}", part=part, line=exc.lineno) from None
    except (Exception, RecursionError, MemoryError) as exc:
        # {{ 1/0 }}, range(10**7), a deep recursion...: the template fails, nothing else.
        raise TemplateProblem(
            f"{part} fails at render: {type(exc).__name__}: {exc}", part=part,
            cause=type(exc).__name__,
        ) from None  # fmt: skip
    finally:
        _deadline.reset(token)
    if "\r" in subject or "\n" in subject:
        raise TemplateProblem("subject: a variable put a line break in it", part="subject")
    document = (
        f"<html><head><style>{LAYOUT_CSS}</style></head><body>{body}{footer_html}</body></html>"
    )
    html = _inliner.inline(document)
    return RenderedEmail(subject, html, text if text is not None else html_to_text(body))


async def render_off_loop(
    source: TemplateSource, variables: dict[str, Any], *, footer_html: str = ""
) -> RenderedEmail:
    """`render` in a worker thread: the event loop (and /healthz) keeps answering while
    a template renders; the budget stops a runaway one inside the thread."""
    return await asyncio.to_thread(render, source, variables, footer_html=footer_html)


# Failures of a trial render that come from the sample values, not from the template
# (a template may do arithmetic on a variable the sample gives as text).
_SAMPLE_DEPENDENT = frozenset(
    {"TypeError", "ValueError", "AttributeError", "KeyError", "IndexError"}
)


async def trial_render(source: TemplateSource, variables: dict[str, Any]) -> None:
    """Render once with sample values when a template is saved: one that fails on its
    own (1/0, range(10**7), too slow, too big) is refused now rather than at every send."""
    sample = {name: "Sample" for name in source.variables} | variables
    try:
        await render_off_loop(source, sample)
    except TemplateProblem as exc:
        if exc.part == "variables" or exc.cause in _SAMPLE_DEPENDENT:
            return
        raise


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
