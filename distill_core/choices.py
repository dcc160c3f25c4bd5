"""What every registered method carries, typed once, so that each face is generated from its entry: the CLI's
choices and help, the config checks, the sweep's factors, the app's labels and knob inputs, and the docs' rows
(checked by tests/test_docs.py). A new attack, loss, teacher, student or defence is its module plus its docs row.

An entry's knobs are config fields it owns: their type, default and help live on the field, their label and range
too (`config.opt(..., label=, low=, high=)`), so a knob is declared once, where its config is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Choice:
    name: str                                               # its key in the registry, the CLI's and configs' value
    title: str                                              # what it is, in one line (app captions, CLI help)
    label: str = field(default="", kw_only=True)            # how the app names it (empty: the name)
    cite: str = field(default="", kw_only=True)             # the paper that defines it
    knobs: tuple[str, ...] = field(default=(), kw_only=True)  # the config fields it owns, shown when it is chosen

    @property
    def shown(self) -> str:
        return self.label or self.name


def choice_help(registry) -> str:
    """`a (Label), b, ...`: a registry's names, with labels where they differ, for a CLI help text."""
    entries = registry if isinstance(registry, Mapping) else dict.fromkeys(registry)
    return ", ".join(f"{name} ({entry.label})" if getattr(entry, "label", "") else name
                     for name, entry in entries.items())
