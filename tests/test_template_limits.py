"""Prompt templates from scenario files cannot hang, fill memory or load themselves:
`mas validate` refuses them (one line, in well under a second), and a template that only
goes over a limit with a real step's data fails that step with one line."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
import tracemalloc

import pytest

import mas
from mas.agents.llm.prompts import PromptBuilder, PromptContext, PromptError
from mas.errors import ScenarioError
from tests.conftest import PD

ATTACKS = {
    "nested range": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "range of 100,000 items"),
    "nested small ranges": (
        "{% for i in range(9000) %}{% for j in range(9000) %}{% endfor %}{% endfor %}", "more than 200,000 loop steps and calls"
    ),
    "string repetition": ("{{ 'x' * 10000000000 }}", "repeated string or list (*) would be longer than 200,000"),
    "list repetition": ("{{ [persona] * 10000000000 }}", "repeated string or list (*)"),
    "include persona": ("{% include persona %}", "include and import are not allowed"),
    "include itself": ("{% include 'custom_user' %}", "include and import are not allowed"),
    "import": ("{% import 'user' as u %}{{ u }}", "include and import are not allowed"),
    "extends a variable": ("{% extends persona %}", "extends needs a constant template name"),
    "macro recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursed too deeply"),
    "doubling macro": ("{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s }}{% endmacro %}{{ d('x', 60) }}", "joined string (~)"),
    "doubling sets": ("{% set s = 'x' * 100000 %}" + "{% set s = s ~ s %}" * 40 + "{{ s }}", "joined string (~)"),
    "printf width": ("{{ '%0999999999d' % 1 }}", "% format wider than"),
    "format filter width": ("{{ '%0999999999d'|format(1) }}", "% format wider than"),
    "str.format width": ("{{ '{:>999999999}'.format(1) }}", "str.format is not available"),
    "center width": ("{{ persona|center(999999999) }}", "filter 'center' argument larger than"),
    "replace blow-up": ("{% set s = 'a' * 100000 %}{{ s|replace('a', s) }}", "filter 'replace' would be longer"),
    "huge power": ("{{ 2 ** 100000000 }}", "power (**) with more than 4096 bits"),
}


def _llm_scenario(template: dict) -> dict:
    data = copy.deepcopy(PD)
    data["agents"] = [{"id": "a", "policy": {"type": "llm", "template": template}}, {"id": "b", "policy": "tit_for_tat"}]
    return data


@pytest.mark.parametrize("name", list(ATTACKS))
def test_validation_refuses_a_runaway_template_quickly(write_scenario, name: str) -> None:
    source, fragment = ATTACKS[name]
    path = write_scenario(_llm_scenario({"user": source}))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ScenarioError) as info:
            mas.load_scenario(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 64 * 2**20
    message = str(info.value)
    assert "\n" not in message and "agents.0.policy.template.user: " in message
    assert fragment in message, message


def test_the_system_template_is_checked_too(write_scenario) -> None:
    with pytest.raises(ScenarioError, match="template.system: .*more than 200,000 loop steps"):
        mas.load_scenario(write_scenario(_llm_scenario({"system": ATTACKS["nested small ranges"][0]})))


def test_ordinary_templates_still_validate_and_render(write_scenario) -> None:
    user = (
        '{% extends "user" %}{% block task %}{% for h in history %}{{ loop.index }}:{{ h.you ~ "!" }} {% endfor %}'
        "{{ '%-4s|' % agent }}{{ options|join('/')|center(20) }}{{ '%.2f'|format(0.5) }}{% endblock %}"
    )
    scenario = mas.load_scenario(write_scenario(_llm_scenario({"user": user})))
    builder = PromptBuilder("normal_form", user=scenario.agents[0].policy.template.user)
    history = [{"round": r, "you": "C", "others": [], "reward": 3} for r in (1, 2)]
    _, turn = builder.render(_context(history=history))
    assert "1:C! 2:C! a   |" in turn["content"] and "0.50" in turn["content"] and "C/D" in turn["content"]


def _context(**changes) -> PromptContext:
    values = dict(agent="a", round=1, talking=False, rules="Rules.", situation="Now.", options=["C", "D"])
    return PromptContext(**{**values, **changes})


@pytest.mark.parametrize(
    "template, context, fragment",
    [
        # fine on the 5-round sample, too slow on 1000 rounds of history
        (
            "{% for h in history %}{% for i in range(9000) %}{% endfor %}{% endfor %}",
            {"history": [{"round": r} for r in range(1000)]},
            "more than 200,000 loop steps and calls",
        ),
        # fine on the sample, 4 MB of prompt with a long persona and history
        ("{% for h in history %}{{ persona }}{% endfor %}", {"history": [{}] * 1000, "persona": "p" * 4000}, "rendered prompt longer"),
    ],
)
def test_a_template_over_a_limit_at_run_time_fails_the_step_in_one_line(template, context, fragment) -> None:
    builder = PromptBuilder("normal_form", user=template)
    start = time.perf_counter()
    with pytest.raises(PromptError) as info:
        builder.render(_context(**context))
    assert time.perf_counter() - start < 5
    assert "\n" not in str(info.value) and fragment in str(info.value)


def test_mas_validate_catches_runaway_templates(write_scenario) -> None:
    path = write_scenario(_llm_scenario({"user": ATTACKS["nested range"][0]}))
    proc = subprocess.run([sys.executable, "-m", "mas.cli", "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout.count("\n") == 1 and "range of 100,000 items" in proc.stdout
