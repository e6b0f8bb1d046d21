"""Template rendering: the one place that imports Jinja2.

Every template (email, social, toolkit) renders in an ``ImmutableSandboxedEnvironment``
with ``StrictUndefined``: a name outside the context is an error, not an empty string.
HTML parts are autoescaped; the subject and the text part are not. On top of Jinja's
sandbox we refuse ``str.format``/``format_map`` outright (the source of several sandbox
escapes, e.g. CVE-2024-56326 and CVE-2025-27516) and bound ``+``, ``*``, ``**``, ``%``
and the filters that multiply sizes (center, format, indent, join, replace, wordwrap:
:mod:`services.campaigns.render_guards`),
so that most abuse (a gigabyte string, 10**64**64) fails at once, in process. Time and
output size are bounded by :mod:`services.campaigns.render_pool`, which renders every
staff-written template in worker processes. The context handed to a template is frozen
into read-only records, so nothing a template does can change the caller's data.

The context (CONTRACT.md, "Template context") never holds an email address.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.campaigns.render_guards import BOUNDED_BINOPS, TooBig, bounded_filters

__all__ = [
    "Rendered",
    "TemplateProblem",
    "TemplateRenderer",
    "sample_context",
]

_CACHE_SIZE = 512
_RECENT_SIZE = 64


class TemplateProblem(ValueError):
    """A template that does not compile or render in the sandbox; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rendered:
    """One recipient's message: subject (None for channels without one), html, text."""

    subject: str | None
    html: str | None
    text: str


class _Record(Mapping[str, Any]):
    """A read-only mapping with a name, so that errors read "'contact' has no attribute 'x'".

    The label is private (underscore), so templates cannot reach it, and the record has
    no public attributes besides the Mapping methods, exactly like a dict.
    """

    __slots__ = ("_data", "_label")

    def __init__(self, data: Mapping[str, Any], label: str) -> None:
        self._data = {
            str(k): v if type(v) in _LEAVES else _freeze(v, f"{label}.{k}") for k, v in data.items()
        }
        self._label = label

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<{self._label}>"


#: Immutable leaves handed to templates as they are (checked by exact type, cheaply,
#: before the ABC checks below; subclasses still take the general path).
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _freeze(value: Any, label: str) -> Any:
    if type(value) in _LEAVES or isinstance(value, _Record):
        return value
    if isinstance(value, Mapping):
        return _Record(value, label)
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, label.rstrip("s")) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(value)
    return value


class _Undefined(StrictUndefined):
    """StrictUndefined that names our records instead of "'dict object'"."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj = self._undefined_obj
        if self._undefined_hint is None and isinstance(obj, _Record):
            return f"{obj._label!r} has no attribute {self._undefined_name!r}"
        return super()._undefined_message


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, minus str.format and with bounded ``+``, ``*``, ``**``,
    ``%`` and size-amplifying filters (center, format, indent, join, replace, wordwrap)."""

    intercepted_binops = frozenset(BOUNDED_BINOPS)

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=_Undefined, auto_reload=False)
        self.binop_table.update(BOUNDED_BINOPS)
        self.filters.update(bounded_filters(self.filters))

    def wrap_str_format(self, value: Any) -> None:
        # Jinja would hand back a sandboxed formatter; we refuse formatting altogether
        # (``is_safe_attribute`` below turns it into an unsafe-access error).
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in ("format", "format_map"):
            return False
        return super().is_safe_attribute(obj, attr, value)


class SampleCheck:
    """``check``: what a renderer answers a staff member saving or previewing a template."""

    def render(
        self, subject: str | None, html: str | None, text: str, context: Mapping[str, Any]
    ) -> Rendered:
        raise NotImplementedError

    def check(
        self,
        subject: str | None,
        html: str | None,
        text: str,
        *,
        channel: str = "email",
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Render against ``context`` (default: the channel's sample); raise TemplateProblem."""
        self.render(subject, html, text, sample_context(channel) if context is None else context)


class TemplateRenderer(SampleCheck):
    """Compiles templates once (cached by source hash) and renders them in the sandbox.

    Thread-safe: compiled templates are immutable and the cache is guarded by a lock.
    """

    def __init__(self) -> None:
        self._html = _Sandbox(autoescape=True)
        self._plain = _Sandbox(autoescape=False)
        self._cache: dict[tuple[bool, bytes], Template] = {}
        self._recent: dict[tuple[bool, str], Template] = {}  # by source, for hot loops
        self._lock = threading.Lock()

    def render(
        self,
        subject: str | None,
        html: str | None,
        text: str,
        context: Mapping[str, Any],
        *,
        max_bytes: int | None = None,
    ) -> Rendered:
        """Render the three parts for one recipient; TemplateProblem names the failing part.

        With ``max_bytes``, rendering stops as soon as the message (the three parts
        together, UTF-8) grows past it.
        """
        frozen = {k: _freeze(v, k) for k, v in context.items()}
        room = [max_bytes]
        rendered_subject = self._part("subject", subject, frozen, room, html=False)
        if rendered_subject is not None:
            # A subject is a header: one line, no CR/LF smuggled in by a value.
            rendered_subject = " ".join(rendered_subject.split())
        out = Rendered(
            subject=rendered_subject,
            html=self._part("html", html, frozen, room, html=True),
            text=self._part("text", text, frozen, room, html=False) or "",
        )
        if max_bytes is not None and (max_bytes - (room[0] or 0)) * 4 > max_bytes:
            parts = (out.subject or "", out.html or "", out.text)  # characters → bytes
            if sum(len(p.encode("utf-8", "surrogatepass")) for p in parts) > max_bytes:
                raise TemplateProblem(_over(max_bytes))
        return out

    def _part(
        self,
        part: str,
        source: str | None,
        context: dict[str, Any],
        room: list[int | None],
        *,
        html: bool,
    ) -> str | None:
        if source is None:
            return None
        try:
            template = self._compile(source, html=html)
            if room[0] is None:
                return str(template.render(context))
            chunks, left = [], room[0]
            for chunk in template.generate(context):
                left -= len(chunk)
                if left < 0:
                    raise TemplateProblem(f"{part}: {_over(room[0])}")
                chunks.append(chunk)
            room[0] = left
            return "".join(chunks)
        except TemplateProblem:
            raise
        except TooBig as exc:
            raise TemplateProblem(f"{part}: {exc}") from None
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"{part}: line {exc.lineno}: {exc.message}") from None
        except TemplateError as exc:
            raise TemplateProblem(f"{part}: {exc.message or exc}") from None
        except Exception as exc:  # a template can raise anything Python can (1/0, int('x'))
            raise TemplateProblem(f"{part}: {type(exc).__name__}: {exc}") from None

    def _compile(self, source: str, *, html: bool) -> Template:
        template = self._recent.get((html, source))  # str hashes are cached: no re-hash
        if template is not None:
            return template
        key = (html, hashlib.sha256(source.encode("utf-8", "surrogatepass")).digest())
        template = self._cache.get(key)
        if template is None:
            template = (self._html if html else self._plain).from_string(source)
            # Jinja keeps a template's globals as a ChainMap over the environment's and
            # flattens it into every render's context; ours never change after the
            # environment is built, so flatten once here (same names, same values).
            template.globals = dict(template.globals)
            with self._lock:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = template
        with self._lock:
            if len(self._recent) >= _RECENT_SIZE:
                self._recent.clear()
            self._recent[(html, source)] = template
        return template


def _over(max_bytes: int) -> str:
    return f"the message is over the {max_bytes:,}-byte limit (WINWIN_RENDER_MAX_BYTES)"


def sample_context(channel: str = "email") -> dict[str, Any]:
    """A context with every name a real one has, used to check templates when saved.

    Toolkit templates get a sample messenger (email templates get None, as at send
    time); social templates get ``platform``.
    """
    base = "https://winwin.example.org"
    resources = [
        {"id": "res-1", "title": "Diet tips from parents", "kind": "guide", "url": f"{base}/r/s1"},
        {"id": "res-2", "title": "School plan template", "kind": "tool", "url": f"{base}/r/s2"},
    ]
    context: dict[str, Any] = {
        "contact": {
            "name": "Ann Example",
            "first_name": "Ann",
            "language": "en",
            "attributes": {"role": "parent", "center": "sample-center"},
        },
        "campaign": {"id": "cmp-sample", "name": "Sample campaign"},
        "resources": resources,
        "recommended": resources[:1],
        "messenger": None,
        "track": _sample_track(base),
        "unsubscribe_url": f"{base}/u/sample",
        "preferences_url": f"{base}/u/sample",
    }
    if channel == "toolkit":
        context["messenger"] = {"id": "msg-sample", "name": "Sam Leader", "role": "parent"}
    if channel == "social":
        context["platform"] = "x"
    return context


def _sample_track(base: str) -> Callable[[str], str]:
    def track(url: str) -> str:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"track() needs an absolute http(s) URL, got {url!r}")
        return f"{base}/r/sample"

    return track
