"""Every Protocol a user implements is listed in one place, docs/protocols.md, with its
contract: the page names each protocol the code defines, in its module."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from support.modules import classroom_modules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocols.md"


def protocols() -> dict[str, str]:
    """Each typing.Protocol defined in a classroom module: class name -> module."""
    found = {}
    for module in classroom_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and getattr(cls, "_is_protocol", False):
                found[cls.__name__] = module.__name__
    return found


def test_every_protocol_is_on_the_protocols_page_under_its_module():
    found = protocols()
    assert {"TeachingLoop", "InterventionPolicy", "Learner", "LLM"} <= set(found)  # the walk found them
    page = DOCS.read_text()
    documented = set(re.findall(r"\*\*`(\w+)`\*\*", page))
    assert set(found) <= documented, f"protocols missing from docs/protocols.md: {sorted(set(found) - documented)}"
    assert documented <= set(found), f"docs/protocols.md names protocols the code does not have: {sorted(documented - set(found))}"
    # Each is named with the module it lives in (in its entry or its section's heading).
    for name, module in found.items():
        entry = page[page.index(f"**`{name}`**") :].split("\n\n")[0]
        heading = page[: page.index(f"**`{name}`**")].rsplit("\n## ", 1)[-1].splitlines()[0]
        assert module in entry or module in heading or module.rsplit(".", 1)[0] in heading, (name, module)
