"""The request-template sandbox: what templates may do, and the bounds on what they may not."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import TriggerFactory
from triggers.templating import MAX_TEMPLATE_CHARS, TransformError, render

DATA = {"data": {"new": {"id": 7, "name": "Ada <&>", "items": [1, 2, 3]}}, "type": "DB_INSERT"}


def run(source: str, *, max_chars: int = 100_000, time_s: float = 2.0) -> str:
    return render(source, DATA, max_chars=max_chars, time_s=time_s)


def test_renders_json_data_with_loops_filters_and_tojson():
    source = (
        '{"id": {{ data.new.id }}, "name": {{ data.new.name | tojson }}, '
        '"sum": {{ data.new["items"] | sum }}, '
        '"list": [{% for i in data.new["items"] %}{{ i * 2 }}{% if not loop.last %},'
        "{% endif %}{% endfor %}]}"
    )
    assert run(source) == '{"id": 7, "name": "Ada <&>", "sum": 6, "list": [2,4,6]}'


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ data.__class__ }}", "unsafe"),
        ("{{ data.new.name.__class__.__mro__ }}", "unsafe"),
        ("{{ data.update({'a': 1}) }}", "unsafe"),
        ("{{ data.new.name.format }}", "unsafe"),
        ("{{ lipsum(10) }}", "undefined"),
        ("{{ cycler }}", "undefined"),
        ("{{ data.missing }}", "no attribute 'missing'"),
    ],
)
def test_only_json_data_is_reachable(source, message):
    with pytest.raises(TransformError, match=message):
        run(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "range"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "steps",
        ),
        ('{{ "x" * 1000000000 }}', "over 1000 characters"),
        ('{{ range(10000) | join("x" * 900) }}', "over 1000 characters"),
        ('{{ "abc" | replace("", "y" * 900) }}', "over 1000 characters"),
        ('{{ "%999999999d" % 1 }}', "% formatting"),
        ("{{ 7 ** 100000 }}", "bits"),
        ("{% for i in range(2000) %}xxxxxxxxxx{% endfor %}", "over 1000 characters"),
        ('{% set x = "a" * 600 %}{% set y = x ~ x %}', "over 1000 characters"),
    ],
)
def test_work_and_output_are_bounded(source, message):
    with pytest.raises(TransformError, match=message):
        run(source, max_chars=1000)


def test_a_render_that_runs_over_its_time_stops():
    # Exponential macro recursion: no loop, no output, just calls.
    source = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    )
    with pytest.raises(TransformError, match="took too long"):
        run(source, time_s=0.05)


def test_oversized_and_broken_templates_are_refused():
    with pytest.raises(TransformError, match=f"limited to {MAX_TEMPLATE_CHARS}"):
        run("x" * (MAX_TEMPLATE_CHARS + 1))
    with pytest.raises(TransformError, match="line 2"):
        run("ok\n{% for x in y %}")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"transform_body": '{"a": {{ data.x }'}, "transform_body"),
        ({"transform_url": "{{ base_url }/x"}, "transform_url"),
        ({"transform_query": {"page": "{% if %}"}}, "transform_query"),
        ({"transform_query": ["not", "an", "object"]}, "transform_query"),
        ({"transform_headers": {"X-A": "{{"}}, "transform_headers"),
        ({"transform_headers": {"X-SC-Token": "x"}}, "transform_headers"),
        ({"transform_headers": {"Bad Name": "x"}}, "transform_headers"),
        ({"transform_method": "TRACE"}, "transform_method"),
    ],
)
def test_validation_refuses_bad_templates_naming_the_field(fields, field):
    trigger = TriggerFactory.build(**fields)
    with pytest.raises(ValidationError) as caught:
        trigger.full_clean()
    assert field in caught.value.message_dict


@pytest.mark.django_db
def test_validation_accepts_a_full_transform():
    trigger = TriggerFactory.build(
        transform_method="PUT",
        transform_url="{{ base_url }}/orders/{{ data.id }}",
        transform_query={"source": "{{ type }}"},
        transform_headers={"Content-Type": "application/json", "X-Order": "{{ data.id }}"},
        transform_body='{"id": {{ data.id }}}',
    )
    trigger.full_clean()
