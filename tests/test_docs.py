"""The docs keep up with the registries: every attack, trigger, teacher, student, loss, placement and named defence
has its line in docs/fidelity.md (where it differs from its source) and in docs/methods.md (what it is)."""
from pathlib import Path

import pytest

from distill_core.attacks import ATTACKS
from distill_core.data.triggers import TRIGGERS
from distill_core.distill import DEFENCES, LOSSES, PLACEMENTS, STUDENTS, TEACHERS

DOCS = Path(__file__).resolve().parent.parent / "docs"
REGISTRIES = (ATTACKS, TRIGGERS, TEACHERS, STUDENTS, LOSSES, PLACEMENTS, DEFENCES)


def unnamed(doc: str) -> list[str]:
    """The registered choices `doc` does not name (as `name`), read from the registries when called."""
    text = (DOCS / doc).read_text()
    return [name for registry in REGISTRIES for name in registry if f"`{name}`" not in text]


@pytest.mark.parametrize("doc", ["fidelity.md", "methods.md"])
def test_every_registered_choice_is_named_in_the_docs(doc):
    assert not unnamed(doc), f"{doc} does not name {unnamed(doc)}"
