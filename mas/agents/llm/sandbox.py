"""A Jinja2 sandbox with bounded time and memory, for prompt templates from scenario files.

`SandboxedEnvironment` stops templates from reaching Python objects, but not from running
forever or filling memory: nested `range(100000)` loops, `"x" * 10**12`, a macro that
doubles a string, or `{% include %}` of the template itself. `LimitedSandbox` adds:

- a budget of `MAX_OPS` loop iterations and calls per render (every `for` loop's iterable
  is wrapped at parse time, every call goes through `call`);
- `range` of at most `MAX_RANGE` items;
- size checks before `*`, `**`, `%` and `+` build a result, on the result of every `~`,
  on every string passed to a call, on the width arguments of the padding filters and on
  the rendered output (`MAX_STRING` characters);
- no `include`, `import` or `from ... import` at all, and `extends` only of a constant
  name (the defaults "system" and "user"), so no template can load itself;
- no `str.format` (its field widths cannot be bounded beforehand; `~` and the `format`
  filter remain).

A template over any limit fails with a `TemplateLimitError` (a Jinja2 `SecurityError`, so a
`TemplateError`), which callers report as one line.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import FilterArgumentError, SecurityError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

#: loop iterations plus calls allowed in one render
MAX_OPS = 200_000
#: the most items one `range` may have
MAX_RANGE = 10_000
#: the longest string or list a template may build, and the longest rendered output
MAX_STRING = 200_000
#: filters whose numeric arguments set a width or a count (checked against MAX_STRING)
_SIZED_FILTERS = ("center", "indent", "wordwrap", "truncate", "batch", "slice")
#: a printf width or precision in a `%` format ("%099999999d", "%.9999999f")
_PRINTF_NUMBER = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d*))?")
_PRINTF_STAR = re.compile(r"%[-+ #0]*\d*(?:\*|\.\*)")

_ops: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("mas_template_ops", default=None)


class TemplateLimitError(SecurityError):
    """A template went over one of the sandbox's limits (named in the message)."""


def _tick(count: int = 1) -> None:
    budget = _ops.get()
    if budget is None:
        return
    budget[0] += count
    if budget[0] > MAX_OPS:
        raise TemplateLimitError(f"template did more than {MAX_OPS:,} loop steps and calls")


def _check_size(value: Any, what: str) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_STRING:
        raise TemplateLimitError(f"{what} would be longer than {MAX_STRING:,}")
    return value


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Yield the items of a loop's iterable, charging one op each."""
    for item in iterable:
        _tick()
        yield item


def _limited_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise TemplateLimitError(f"range of {len(result):,} items; at most {MAX_RANGE:,}")
    return result


def _sized_filter(name: str, func: Any) -> Any:
    def checked(*args: Any, **kwargs: Any) -> Any:
        numbers = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
        if any(abs(n) > MAX_STRING for n in numbers):
            raise TemplateLimitError(f"filter '{name}' argument larger than {MAX_STRING:,}")
        return _check_size(func(*args, **kwargs), f"result of filter '{name}'")

    for attr in ("jinja_pass_arg",):  # keep @pass_environment and friends working
        if hasattr(func, attr):
            setattr(checked, attr, getattr(func, attr))
    return checked


def _repeat_size(left: Any, right: Any) -> int:
    """Length of `left * right` when it repeats a sequence, else 0."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            return len(seq) * max(count, 0)
    return 0


class _Limiter(NodeTransformer):
    """Counts every loop step and checks the length of every `~` join."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_mas_loop", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        self.generic_visit(node)
        return nodes.Filter(node, "_mas_size", [], [], None, None, lineno=node.lineno)


class LimitedSandbox(SandboxedEnvironment):
    """A `SandboxedEnvironment` with the limits of the module docstring."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _limited_range
        self.filters["_mas_loop"] = _counted
        self.filters["_mas_size"] = lambda value: _check_size(value, "a joined string (~)")
        for name in _SIZED_FILTERS:
            self.filters[name] = _sized_filter(name, self.filters[name])
        self.filters["replace"] = self._replace
        self.filters["format"] = _format_filter

    @staticmethod
    def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
        text = str(value)
        hits = text.count(str(old)) if count is None else min(max(count, 0), text.count(str(old)))
        _check_size_n(len(text) + hits * max(len(str(new)) - len(str(old)), 0), "result of filter 'replace'")
        return text.replace(str(old), str(new), -1 if count is None else count)

    # ----- parse time: loops are counted, templates cannot load templates ---------------
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport)):
            raise TemplateSyntaxError("include and import are not allowed in prompt templates", node.lineno, name, filename)
        for node in tree.find_all(nodes.Extends):
            if not isinstance(node.template, nodes.Const):
                raise TemplateSyntaxError("extends needs a constant template name", node.lineno, name, filename)
        tree = _Limiter().visit(tree)
        tree.set_environment(self)
        return tree

    # ----- run time ------------------------------------------------------------------------
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            _check_size_n(_repeat_size(left, right), "a repeated string or list (*)")
        elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_size_n(len(left) + len(right), "a joined string or list (+)")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and right * abs(left).bit_length() > 4096:
                raise TemplateLimitError("a power (**) with more than 4096 bits")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        _tick()
        for value in (*args, *kwargs.values()):
            _check_size(value, "an argument")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        if super().wrap_str_format(value) is None:
            return None

        def refused(*args: Any, **kwargs: Any) -> str:
            raise TemplateLimitError("str.format is not available in prompt templates; use ~ or the format filter")

        return refused


def _check_printf(fmt: str) -> None:
    """Refuse a printf-style format whose width or precision could build a huge string."""
    for width, precision in _PRINTF_NUMBER.findall(fmt):
        if len(width) > 6 or len(precision) > 6 or int(width or 0) > MAX_STRING or int(precision or 0) > MAX_STRING:
            raise TemplateLimitError(f"a % format wider than {MAX_STRING:,}")
    if _PRINTF_STAR.search(fmt):
        raise TemplateLimitError("a % format with a '*' width")


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise FilterArgumentError("can't handle positional and keyword arguments at the same time")
    _check_printf(str(value))
    return _check_size(str(value) % (kwargs or args), "result of filter 'format'")


def _check_size_n(size: int, what: str) -> None:
    if size > MAX_STRING:
        raise TemplateLimitError(f"{what} would be longer than {MAX_STRING:,}")


def render_limited(template: Any, values: Mapping[str, Any]) -> str:
    """Render `template` (from a `LimitedSandbox`) within the op and output budgets.

    Raises:
        TemplateLimitError: a limit was hit, or the template recursed or ran out of memory.
    """
    token = _ops.set([0])
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(values):
            size += len(chunk)
            if size > MAX_STRING:
                raise TemplateLimitError(f"rendered prompt longer than {MAX_STRING:,} characters")
            parts.append(chunk)
        return "".join(parts)
    except RecursionError:
        raise TemplateLimitError("template recursed too deeply") from None
    except (MemoryError, OverflowError) as exc:
        raise TemplateLimitError(f"template ran out of memory ({exc.__class__.__name__})") from None
    finally:
        _ops.reset(token)
