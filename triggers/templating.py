"""Request templates: Jinja2's sandbox, bounded in template size, work, output and time.

A trigger's request transform (method, URL, query, header and body templates) is written by
an operator and rendered over event data on the worker, so it is held on a short leash:

- templates over MAX_TEMPLATE_CHARS are refused, and so is any syntax error (on save);
- only JSON data is reachable: attributes of anything but dicts, lists and strings (and a
  handful of their read-only methods) are refused by the sandbox;
- `range` is capped, every loop, function and macro call draws from a budget of steps, and
  every step checks the deadline: Jinja's sandbox alone cannot stop `range(10**9)`;
- every value a template builds (by `~`, `+`, `*`, a filter, a method or a call) and every
  `{{ … }}` it prints is measured by the text it would render to (a list of a thousand copies
  of a long string weighs a thousand times that string), checked before it is built where the
  size can be known, and refused over the output cap;
- the output is streamed and cut at its cap.

Those checks name the bound a template hits. They cannot interrupt one long C-level operation
(a sort, a split), so workers render in a child process with a hard deadline and a memory
limit (triggers.render_process). `triggers` imports nothing from `eventing`: the caller passes
the limits and their names (the body's cap is EVENTING["MAX_PAYLOAD_BYTES"], the time
EVENTING["TRANSFORM_RENDER_MS"]).
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_environment
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.filters import FILTERS
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

# Longest template source accepted (characters).
MAX_TEMPLATE_CHARS = 16 * 1024
# Most items `range()` may produce, and loop iterations plus calls one render may make.
MAX_RANGE = 10_000
MAX_STEPS = 100_000
# Largest integer a template may compute (bits): beyond it, arithmetic itself gets slow.
MAX_INT_BITS = 4096
# Filters a template may use: none of them turns a small input into a huge output by itself
# (join and replace are replaced by bounded versions below).
ALLOWED_FILTERS = (
    "abs",
    "capitalize",
    "default",
    "d",
    "dictsort",
    "first",
    "float",
    "int",
    "last",
    "length",
    "count",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "round",
    "select",
    "selectattr",
    "sort",
    "string",
    "sum",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
)
# Read-only methods of the JSON types that templates may call.
SAFE_METHODS = {
    str: {
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "split",
        "rsplit",
        "title",
        "capitalize",
        "isdigit",
        "find",
        "count",
    },
    dict: {"get", "keys", "items", "values"},
    list: {"index", "count"},
}
# Names of the helpers that bound loops and concatenation (not meant for templates).
ITER_GUARD = "eventing_bounded_iter"
SIZE_GUARD = "eventing_bounded_size"


class TransformError(Exception):
    """A template could not be compiled or rendered; the message says which and why."""


@dataclass
class Budget:
    """What one render may still spend: steps, time, and the size of any value it builds.

    `size_bound` and `time_bound` name the limits in messages (the settings they come from).
    """

    deadline: float
    max_chars: int
    steps: int = MAX_STEPS
    size_bound: str = "output cap"
    time_bound: str = "time limit"

    def step(self, count: int = 1) -> None:
        """Spend `count` steps; raise when the steps or the time are used up."""
        self.steps -= count
        if self.steps < 0:
            raise TransformError(f"the template does more than {MAX_STEPS} steps (MAX_STEPS)")
        if time.monotonic() > self.deadline:
            raise TransformError(f"the template took too long to render ({self.time_bound})")

    def size(self, chars: int) -> None:
        """Refuse a value of `chars` characters over the output cap."""
        if chars > self.max_chars:
            raise TransformError(
                f"the template builds a value over {self.max_chars} characters ({self.size_bound})"
            )

    def check(self, value: Any) -> Any:
        """Refuse `value` if the text it renders to is over the output cap; else return it."""
        self.size(weight(value, self.max_chars))
        return value


_budget: contextvars.ContextVar[Budget] = contextvars.ContextVar("transform_budget")


def budget() -> Budget:
    """The budget of the render under way."""
    try:
        return _budget.get()
    except LookupError:
        raise TransformError("templates are rendered through render() only") from None


def weight(value: Any, limit: int) -> int:
    """About how many characters `value` renders to (str(), or JSON): strings by length,
    containers by their items plus separators. Stops counting once over `limit`, so weighing
    a huge value costs no more than weighing one at the limit."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 2 + 2 * len(item)
            stack.extend(item[: limit - total + 1] if len(item) > limit else item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        else:
            total += 24  # a float, a range, an undefined: short when printed
    return total


def size_of(value: Any) -> int:
    """The weight of a string or container (0 for a number): what `+` and `~` check."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple, dict)):
        return weight(value, budget().max_chars)
    return 0


def bounded_iter(iterable: Iterable) -> Iterator:
    """Every loop iterates through this: each item is a step."""
    current = budget()
    for item in iterable:
        current.step()
        yield item


def bounded_size(value: Any) -> Any:
    """Every `~` concatenation passes through this: its result stays under the cap."""
    budget().size(size_of(value))
    return value


def bounded_range(*args: int) -> range:
    """range(), refused beyond MAX_RANGE items."""
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise TransformError(f"range() is limited to {MAX_RANGE} items (MAX_RANGE)")
    return items


def bounded_join(value: Iterable, separator: str = "") -> str:
    """The join filter, refused before building a string over the cap."""
    parts = [str(item) for item in bounded_iter(value)]
    budget().size(sum(map(len, parts)) + len(str(separator)) * max(len(parts) - 1, 0))
    return str(separator).join(parts)


def bounded_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    """The replace filter, refused before building a string over the cap."""
    text, old, new = str(value), str(old), str(new)
    hits = len(text) + 1 if not old else text.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    budget().size(len(text) + hits * max(len(new) - len(old), 0))
    return text.replace(old, new) if count is None else text.replace(old, new, count)


def to_json(value: Any) -> str:
    """Compact JSON, as the receiver will parse it (not HTML-escaped like Jinja's tojson)."""
    budget().check(value)  # before dumps builds it: `[s] * 10**6 | tojson`
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TransformError(f"tojson: {exc}") from None
    budget().size(len(text))
    return text


def url_quote(value: Any, safe: str = "") -> str:
    """Percent-encode a value for a URL path segment (every reserved character encoded)."""
    return quote(str(value), safe=safe)


@pass_environment
def bounded_sum(environment, iterable: Iterable, attribute: Any = None, start: Any = 0) -> Any:
    """The sum filter, for numbers only: adding lists one by one is quadratic in time."""
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        raise TransformError("sum adds numbers only (lists would take quadratic time)")
    return FILTERS["sum"](environment, iterable, attribute, start)


def bounded_filter(function: Callable) -> Callable:
    """`function` as a filter whose result is measured, and whose lazy results (map, select,
    …) are iterated step by step."""

    @functools.wraps(function)  # keeps Jinja's pass_context / pass_environment marks
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current = budget()
        current.step()
        result = function(*args, **kwargs)
        if isinstance(result, Iterator):
            return bounded_iter(result)
        return current.check(result)

    return wrapper


def bounded_finalize(value: Any) -> Any:
    """Every `{{ … }}` passes through this before str(): a huge list is refused unprinted."""
    return budget().check(value)


class TransformEnvironment(SandboxedEnvironment):
    """The sandbox with the bounds above: attribute access, operators and calls checked."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, LoopContext):
            return True  # loop.index, loop.first, …
        for kind, methods in SAFE_METHODS.items():
            if isinstance(obj, kind):
                return attr in methods
        return False

    def wrap_str_format(self, value: Any) -> None:
        """str.format and format_map are refused like any other method: widths build any size."""
        return None

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        current = budget()
        current.step()
        result = super().call(__context, __obj, *args, **kwargs)
        # A method's result (`s.split()`) or a macro's output is a value like any other.
        return result if isinstance(result, Iterator) else current.check(result)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        current = budget()
        current.step()
        if operator == "%" and isinstance(left, str):
            # printf-style widths ("%999999999d") would build any size: not in templates.
            raise TransformError("use ~ or filters instead of % formatting")
        both_ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and both_ints and abs(left).bit_length() * right > MAX_INT_BITS:
            raise TransformError(f"numbers are limited to {MAX_INT_BITS} bits (MAX_INT_BITS)")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    # By what the copies weigh, not how many there are: `[s] * 10**6`.
                    current.size(size_of(seq) * max(times, 0))
            if both_ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TransformError(f"numbers are limited to {MAX_INT_BITS} bits (MAX_INT_BITS)")
        if operator == "+":
            current.size(size_of(left) + size_of(right))
        return super().call_binop(context, operator, left, right)


class BoundLoops(NodeTransformer):
    """Route every loop's iterable through bounded_iter and every `~` through bounded_size."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - NodeTransformer's name
        self.generic_visit(node)
        node.iter = guard(ITER_GUARD, node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return guard(SIZE_GUARD, node)


def guard(name: str, node: nodes.Expr) -> nodes.Call:
    """`name(node)` as a template expression."""
    call = nodes.Call(nodes.Name(name, "load"), [node], [], None, None)
    return call.set_lineno(node.lineno)


def environment() -> TransformEnvironment:
    """A fresh sandbox: strict undefined names, no loader, only the allowed filters."""
    env = TransformEnvironment(
        undefined=StrictUndefined, autoescape=False, finalize=bounded_finalize
    )
    filters = {name: FILTERS[name] for name in ALLOWED_FILTERS}
    filters.update(
        join=bounded_join,
        replace=bounded_replace,
        tojson=to_json,
        urlquote=url_quote,
        sum=bounded_sum,
    )
    env.filters = {name: bounded_filter(function) for name, function in filters.items()}
    env.globals = {
        "range": bounded_range,
        "dict": dict,
        ITER_GUARD: bounded_iter,
        SIZE_GUARD: bounded_size,
    }
    return env


_env = environment()


@lru_cache(maxsize=256)
def compile_template(source: str):
    """The compiled template, or TransformError naming the line of a syntax error (cached:
    workers render the same few templates over and over)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TransformError(
            f"a template is limited to {MAX_TEMPLATE_CHARS} characters (MAX_TEMPLATE_CHARS)"
        )
    try:
        tree = BoundLoops().visit(_env.parse(source))
        code = _env.compile(tree)
    except TemplateSyntaxError as exc:
        raise TransformError(f"line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TransformError("the template is nested too deeply") from None
    return _env.template_class.from_code(_env, code, _env.make_globals(None), None)


def render(
    source: str,
    variables: dict[str, Any],
    *,
    max_chars: int,
    time_s: float,
    size_bound: str = "output cap",
    time_bound: str = "time limit",
) -> str:
    """Render `source` over `variables` within `max_chars` of output and `time_s` seconds, in
    this process (see triggers.render_process for the isolated render).

    Raises TransformError with a message fit for an invocation log, naming the bound hit.
    """
    template = compile_template(source)
    current = Budget(
        deadline=time.monotonic() + time_s,
        max_chars=max_chars,
        size_bound=size_bound,
        time_bound=time_bound,
    )
    token = _budget.set(current)
    try:
        parts, size = [], 0
        for chunk in template.generate(variables):
            size += len(chunk)
            current.size(size)
            parts.append(chunk)
        return "".join(parts)
    except TransformError:
        raise
    except SecurityError as exc:
        raise TransformError(f"not allowed: {exc}") from None
    except TemplateError as exc:
        raise TransformError(exc.message or type(exc).__name__) from None
    except RecursionError:
        raise TransformError("the template recurses too deeply") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
        raise TransformError(f"{type(exc).__name__}: {exc}") from None
    finally:
        _budget.reset(token)
