"""Prompt templates for LLM teachers and robust parsing of their answers."""
from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Callable

import attrs

from codi_kit.errors import CodiKitError

FIELDS = {"agents", "horizon", "timelines", "agent_list"}


def load_template(path: str, default: str) -> str:
    """The user's template file when ``path`` is set, else ``default``; placeholders are checked."""
    if not path:
        return default
    file = Path(path).expanduser()
    try:
        text = file.read_text()
    except OSError as error:
        raise CodiKitError(f"{file}: cannot read prompt template: {error.strerror}") from None
    unknown = {name for _, name, _, _ in string.Formatter().parse(text) if name} - FIELDS
    if unknown:
        raise CodiKitError(f"{file}: unknown placeholder(s) {sorted(unknown)}; available: {sorted(FIELDS)}")
    if "{timelines}" not in text:
        raise CodiKitError(f"{file}: the template must contain {{timelines}}")
    return text


@attrs.frozen
class TemplateConfig:
    """The setting every timeline text converter has."""

    template: str = ""  # path of a template file replacing the built-in one ({timelines} required)
    compact_template: str = ""  # the same for the compact prompt small local models read


def agent_timelines(agents: int, horizon: int, line: Callable[[int, int], str]) -> str:
    """Per agent, its name then one line per step: ``line(t, i)`` after ``t={t}: ``."""
    lines = []
    for i in range(agents):
        lines.append(f"{answer_text(i)}:")
        lines += [f"t={t}: {line(t, i)}" for t in range(horizon)]
    return "\n".join(lines)


def render(template: str, agents: int, horizon: int, timelines: str) -> str:
    """``[description, timelines, instruction]`` with the segment's numbers filled in."""
    agent_list = ", ".join(answer_text(i) for i in range(agents))
    return template.format(agents=agents, horizon=horizon, timelines=timelines, agent_list=agent_list)


def answer_text(agent: int) -> str:
    """How agent ``agent`` (0-based) is named to the model: 1-based, as the paper writes."""
    return f"Agent {agent + 1}"


_JSON = re.compile(r"\{.*?\}", re.S)
_NAMED = re.compile(r"\bagent[\s_#-]*(\d+)\b", re.I)
_BARE = re.compile(r"^\s*\**\s*(\d+)\s*\**\s*\.?\s*$")


def parse_best_agent(text: str, agents: int) -> int | None:
    """0-based index of the best agent named in ``text``, or None when it cannot be told.

    Accepts JSON (``{"best_agent": 2}``), ``Agent 2`` / ``agent_2`` anywhere (the last one named
    after a phrase such as "best agent is" wins, else the only one named), or a bare ``2``.
    """
    if not text:
        return None
    for blob in _JSON.findall(text):
        try:
            value = json.loads(blob)
        except json.JSONDecodeError:
            continue
        for key in ("best_agent", "agent", "best", "answer"):
            if isinstance(value, dict) and key in value:
                return _checked(str(value[key]), agents)
    verdict = re.findall(r"(?:best|answer|final)[^.\n]*?agent[\s_#-]*(\d+)", text, re.I)
    if verdict:
        return _checked(verdict[-1], agents)
    praised = re.findall(r"agent[\s_#-]*(\d+)\W+(?:is|performs|does)\W+(?:the\W+)?best", text, re.I)
    if praised:
        return _checked(praised[-1], agents)
    named = {int(m) for m in _NAMED.findall(text)}
    if len(named) == 1:
        return _checked(str(named.pop()), agents)
    bare = _BARE.match(text)
    if bare:
        return _checked(bare.group(1), agents)
    return None


def _checked(number: str, agents: int) -> int | None:
    digits = re.sub(r"\D", "", number)
    if not digits:
        return None
    index = int(digits) - 1
    return index if 0 <= index < agents else None
