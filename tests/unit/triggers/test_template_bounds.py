"""Request templates stay within their output, memory and time bounds whatever they do, and a
template that hits one fails with the bound's name: rendered in a child process that is killed
at the deadline, in the worker's path and in the preview's."""

from __future__ import annotations

import time
import uuid

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventing import runtime
from eventing.models import EventLog
from eventing.webhooks import transform
from eventing.webhooks.request import TemplateFailed, WebhookConfigError, build_request
from mission_control.transforms import preview_request
from triggers import render_process
from triggers.models import Trigger
from triggers.render_process import render_isolated
from triggers.templating import TransformError

BUDGET_S = 0.25
# What a render may take beyond its budget: the deadline is enforced by killing the child.
# Unbounded, these templates ran for 27-33 s; a bound far below that but far above a loaded
# machine's scheduling delays shows the cut without timing the kill to the millisecond.
SLACK_S = 2.0
CAP = 1024 * 1024
LONG = "x" * 1000


def isolated(source: str, *, memory_mb: int = 256, time_s: float = BUDGET_S) -> str:
    return render_isolated(
        source,
        {"s": LONG, "n": 7, "l": [1, 2, 3], "data": {"items": ["a", "b"]}},
        pool=transform.renderers(),
        max_chars=CAP,
        time_s=time_s,
        memory_mb=memory_mb,
        size_bound="MAX_PAYLOAD_BYTES",
        time_bound="TRANSFORM_RENDER_MS",
    )


@pytest.fixture(autouse=True)
def running_renderer():
    """A renderer child is up: what is timed is rendering, not a process starting."""
    warm()


def warm() -> None:
    """An idle renderer is running (a render killed at its deadline leaves a fresh one
    starting: its start is not part of the next render)."""
    transform.renderers().warm(256)


def timed(function, *args, **kwargs) -> tuple[str | None, str | None, float]:
    """(output, error, seconds) of one render."""
    started = time.monotonic()
    try:
        output, error = function(*args, **kwargs), None
    except TransformError as exc:
        output, error = None, str(exc)
    return output, error, time.monotonic() - started


@pytest.mark.parametrize(
    "source",
    [
        "{{ [s] * 1000000 }}",
        "{{ ([s] * 1000000) | tojson }}",
        "{{ ([s * 1000] * 1000) | map('upper') | list }}",
        "{% set big = [s] * 10000 %}{{ big }}",
        "{{ dict(a=[s] * 100000) }}",
        "{{ ([[1] * 1000] * 1000) | sum(start=[]) | length }}",
        "{{ (s * 300).split('x') | length }}",
    ],
)
def test_values_built_while_rendering_are_bounded(source):
    """Attack: `{{ [s]*1000000 }}`, `|tojson`, `|map('upper')`, a plain `{{ list }}` built
    output until the process hit 5.2 GB (MemoryError, and the attempt was retried)."""
    _, error, took = timed(isolated, source)

    assert error is not None
    # The size bound, checked before the value is built; on a machine too loaded to get there
    # within the budget, the deadline instead (a bound all the same, named all the same).
    assert "MAX_PAYLOAD_BYTES" in error or "TRANSFORM_RENDER_MS" in error
    assert took < BUDGET_S + SLACK_S


def test_a_cpu_bound_template_is_stopped_at_its_deadline():
    """Attack: one long C-level operation (title-casing and splitting a megabyte) ran for
    seconds against the 250 ms budget; the sandbox's own checks never got the chance."""
    _, error, took = timed(isolated, "{{ (('x ' * 500000) | title).split() | length }}")

    assert "TRANSFORM_RENDER_MS" in error
    assert took < BUDGET_S + SLACK_S
    warm()
    assert isolated("{{ n * 6 }}") == "42"  # a fresh child renders the next template


def test_a_template_over_the_memory_limit_fails_and_the_next_one_renders():
    """Attack: hundreds of variables each under the output cap fill the memory together."""
    source = "".join(f"{{% set v{i} = s * 1000 ~ {i} %}}" for i in range(400)) + "{{ v1[:3] }}"

    _, error, _ = timed(isolated, source, memory_mb=128, time_s=10)

    assert "TRANSFORM_MEMORY_MB" in error
    assert isolated("{{ l | sum }}") == "6"


# Templates from the sandbox's own grammar: names, literals, ranges, sequence and string
# multiplication, concatenation, filters, loops, conditions and nesting.
ATOMS = st.sampled_from(
    ["data.s", "data.n", "data.l", "'ab'", "[1, 2]", "range(50)", "range(10000)", "1000000"]
)
DATA = {"s": LONG, "n": 7, "l": [1, 2, 3]}
FILTERS = st.sampled_from(
    [
        "upper",
        "list",
        "tojson",
        "join",
        "join(data.s)",
        "map('upper')",
        "map('string')",
        "sort",
        "unique",
        "length",
        "string",
        "replace('x', 'yy')",
        "sum",
        "first",
    ]
)


def expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["*", "~", "+", "**"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, FILTERS).map(lambda t: f"({t[0]} | {t[1]})"),
            st.tuples(inner, ATOMS).map(lambda t: f"[{t[0]}, {t[1]}]"),
        )

    return st.recursive(ATOMS, extend, max_leaves=6)


def statements() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(expressions(), inner).map(
                lambda t: f"{{% for x in {t[0]} %}}{t[1]}{{{{ x }}}}{{% endfor %}}"
            ),
            st.tuples(expressions(), inner).map(
                lambda t: f"{{% set v = {t[0]} %}}{t[1]}{{{{ v }}}}"
            ),
            st.tuples(expressions(), inner, inner).map(
                lambda t: f"{{% if {t[0]} %}}{t[1]}{{% else %}}{t[2]}{{% endif %}}"
            ),
            st.lists(inner, min_size=2, max_size=3).map("".join),
        )

    leaf = expressions().map(lambda e: f"{{{{ {e} }}}}")
    return st.recursive(leaf, extend, max_leaves=4)


def trigger_with_body(source: str) -> Trigger:
    """A trigger whose one template is `source` (one render per request: each is timed)."""
    return Trigger(
        name="fuzzed",
        type="fuzz",
        url="https://hooks.example.com/in",
        transform_body=source,
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(source=statements())
def test_fuzzed_templates_end_within_budget_and_cap(source):
    """Whatever the grammar builds ends within the budget + 50 ms and under the output cap,
    in the worker's path (transform.shape) and in the preview's; the renderer keeps serving."""
    trigger = trigger_with_body(source)
    context = {
        "data": DATA,
        "type": "fuzz",
        "id": "0",
        "time": "t",
        "trigger": "fuzzed",
        "base_url": trigger.url,
        "event": {},
    }

    warm()
    shaped, _, took = timed(transform.shape, trigger, context)
    assert took < BUDGET_S + SLACK_S, source
    if shaped is not None:
        assert len(shaped.body) <= CAP

    warm()
    started = time.monotonic()
    reply = preview_request({"transform_body": source}, trigger, DATA)
    assert time.monotonic() - started < BUDGET_S + SLACK_S, source
    assert len(reply.get("body", "")) <= CAP
    assert isolated("{{ n }}") == "7"


def test_a_renderer_that_cannot_start_is_no_template_failure(monkeypatch):
    """A child that does not start is retried like any failed attempt, never failed for good:
    the template is not at fault."""
    runtime.reset()  # the warmed renderer goes: the next render starts a child
    monkeypatch.setattr(render_process, "BOOTSTRAP", "raise SystemExit(1)")
    trigger = trigger_with_body("{{ data.n }}")
    event = EventLog(id=uuid.uuid4(), type="fuzz", payload=DATA, created_at=timezone.now())

    with pytest.raises(render_process.RendererUnavailable):
        isolated("{{ n }}")
    with pytest.raises(WebhookConfigError) as caught:
        build_request(event, trigger, attempt=1)
    assert not isinstance(caught.value, TemplateFailed)


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "MAX_RANGE"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "MAX_STEPS",
        ),
        ("{{ 7 ** 100000 }}", "MAX_INT_BITS"),
        ("{{ (data['items'] * 1000000) | length }}", "MAX_PAYLOAD_BYTES"),
    ],
)
def test_every_bound_is_named_in_the_error(source, bound):
    _, error, _ = timed(isolated, source)

    assert bound in error
