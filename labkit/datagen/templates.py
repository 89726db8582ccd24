"""Phrasing templates (``str.format`` strings): which fields they use and a regex that matches them.

The regex is how the tests check the held-out property concretely: a row rendered from a test
template must not match any train template, and no train row may match a test template.
"""

from __future__ import annotations

import re
import string

_FORMATTER = string.Formatter()


def template_fields(template: str) -> list[str]:
    """The field names a template mentions, in order (repeats kept)."""
    return [name for _, name, _, _ in _FORMATTER.parse(template) if name]


def template_regex(template: str) -> re.Pattern[str]:
    """A regex that fully matches every text rendered from ``template``, whatever the values.

    Each field becomes a named group, so ``match.groupdict()`` gives the rendered values back; a
    field used twice must render the same text both times (a backreference).
    """
    parts: list[str] = []
    seen: set[str] = set()
    for literal, name, _, _ in _FORMATTER.parse(template):
        parts.append(re.escape(literal))
        if name:
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
    return re.compile("".join(parts), re.DOTALL)


def matching_templates(text: str, templates: list[str]) -> list[str]:
    """The templates among ``templates`` that could have produced ``text``."""
    return [template for template in templates if template_regex(template).fullmatch(text)]
