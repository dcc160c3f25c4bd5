"""The docs keep up with the registries: every attack, loss, placement and named defence has its line in
docs/fidelity.md (where it differs from its source) and in docs/methods.md (what it is)."""
from pathlib import Path

import pytest

from distill_core.attacks import ATTACKS
from distill_core.distill import DEFENCES, LOSSES, PLACEMENTS

DOCS = Path(__file__).resolve().parent.parent / "docs"
REGISTERED = [*ATTACKS, *LOSSES, *PLACEMENTS, *DEFENCES]


@pytest.mark.parametrize("doc", ["fidelity.md", "methods.md"])
def test_every_registered_choice_is_named_in_the_docs(doc):
    text = (DOCS / doc).read_text()
    missing = [name for name in REGISTERED if f"`{name}`" not in text]
    assert not missing, f"{doc} does not name {missing}"
