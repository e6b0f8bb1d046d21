"""What a template may build: limits on the operators and filters that multiply sizes.

Used by the sandbox in :mod:`services.campaigns.rendering` (this module imports no
Jinja2). Each check runs before the operation, on its operands, so that most abuse (a
gigabyte string from a few characters, ``10**64**64``) fails at once, in process, with
a reason; the render pool's time, output and memory limits catch the rest.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BOUNDED_BINOPS", "MAX_BUILT", "MAX_INT_BITS", "TooBig", "bounded_filters"]

#: Largest string or sequence a template may build with ``*``.
MAX_REPEAT = 100_000
#: Largest exponent a template may use with ``**``.
MAX_EXPONENT = 64
#: Largest integer (in bits) ``*`` and ``**`` may build: 10**64**64 would take seconds.
MAX_INT_BITS = 100_000
#: Largest string ``+``, ``%`` and the size-amplifying filters may build (characters).
MAX_BUILT = 1_000_000


class TooBig(Exception):
    """An operation that would build a value over a limit; the message says which."""


def _too_big(what: str, limit: int = MAX_BUILT) -> TooBig:
    return TooBig(f"{what} would build more than {limit:,} characters")


def _bounded_mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        sized = isinstance(seq, str | bytes | tuple | list) and isinstance(count, int)
        if sized and len(seq) * count > MAX_REPEAT:
            raise TooBig(f"'*' would build more than {MAX_REPEAT} items")
    ints = isinstance(left, int) and isinstance(right, int)
    if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise TooBig(f"'*' would build a number over {MAX_INT_BITS:,} bits")
    return operator.mul(left, right)


def _bounded_pow(left: Any, right: Any) -> Any:
    if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
        raise TooBig(f"'**' exponents above {MAX_EXPONENT} are not allowed")
    ints = isinstance(left, int) and isinstance(right, int) and right > 0
    if ints and left.bit_length() * right > MAX_INT_BITS:  # 10**64**64 would take seconds
        raise TooBig(f"'**' would build a number over {MAX_INT_BITS:,} bits")
    return operator.pow(left, right)


def _bounded_add(left: Any, right: Any) -> Any:
    sized = isinstance(left, str | tuple | list) and isinstance(right, str | tuple | list)
    if sized and len(left) + len(right) > MAX_BUILT:
        raise _too_big("'+'")
    return operator.add(left, right)


#: A printf-style conversion's width and precision (``%-010.5s``, ``%*d``).
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(fmt: Any) -> None:
    """Refuse ``'%99999999s' % x`` (and ``|format``): widths up to MAX_BUILT, no ``*``."""
    if not isinstance(fmt, str) or "%" not in fmt:
        return
    for match in _PRINTF.finditer(fmt):
        for size in match.groups():
            if size is not None and (size == "*" or int(size) > MAX_BUILT):
                raise _too_big("a '%' width or precision")


def _bounded_mod(left: Any, right: Any) -> Any:
    _check_printf(left)
    return operator.mod(left, right)


def _guard(name: str, estimate: Callable[..., int]) -> Callable[[Callable[..., Any]], Any]:
    """Wrap filter ``name`` so that a call whose estimated output is over MAX_BUILT
    characters is refused before it runs (``estimate`` gets the filter's arguments)."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)  # keeps jinja_pass_arg (environment, eval context)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            if estimate(*args, **kwargs) > MAX_BUILT:
                raise _too_big(f"|{name}")
            return original(*args, **kwargs)

        return bounded

    return wrap


def _text(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _replace_size(_ctx: Any, s: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    if not isinstance(s, str) or not isinstance(old, str) or not isinstance(new, str):
        return 0
    hits = s.count(old) if old else len(s) + 1
    hits = min(hits, count) if isinstance(count, int) and count >= 0 else hits
    return len(s) + hits * max(0, len(new) - len(old))


def _join_size(_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> int:
    if not isinstance(value, list | tuple):
        return 0  # generators: the output limit and the worker's memory limit bound them
    items = sum(_text(v) for v in value)
    return items + max(0, len(value) - 1) * _text(d)


def _indent_size(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return _text(s) + pad * (_text(s) and s.count("\n") + 1)


def _format_size(value: Any, *_: Any, **__: Any) -> int:
    """``|format`` builds what its printf widths say: refused when too wide, else small."""
    _check_printf(value)
    return 0


def _wordwrap_size(_env: Any, s: Any, width: Any = 79, *_: Any, **kw: Any) -> int:
    given = kw.get("wrapstring")
    wrap = given if isinstance(given, str) else "\n"
    return _text(s) * (1 + len(wrap))


#: The filters whose output can be far larger than their input, and its estimate.
_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": lambda value, width=80, *_, **__: max(_text(value), width * isinstance(width, int)),
    "format": _format_size,
    "indent": _indent_size,
    "join": _join_size,
    "replace": _replace_size,
    "wordwrap": _wordwrap_size,
}


#: What ``+``, ``*``, ``**`` and ``%`` do in a template.
BOUNDED_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _bounded_add,
    "*": _bounded_mul,
    "**": _bounded_pow,
    "%": _bounded_mod,
}


def bounded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """The size-amplifying ones of ``filters``, each wrapped in its size check."""
    return {name: _guard(name, size)(filters[name]) for name, size in _FILTER_SIZES.items()}
