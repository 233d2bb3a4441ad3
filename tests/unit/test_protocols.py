"""Every Protocol a user implements is listed in one place, docs/protocols.md, with its
contract: the page names each protocol the code defines, in its module."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocols.md"


def protocols() -> dict[str, str]:
    """Each typing.Protocol defined in a classroom module: class name -> module."""
    found = {}
    for sub in ("agents", "environments", "serving", "launch"):
        top = importlib.import_module(f"classroom.{sub}")
        for name in [top.__name__, *(info.name for info in pkgutil.walk_packages(top.__path__, prefix=f"{top.__name__}."))]:
            module = importlib.import_module(name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == name and getattr(cls, "_is_protocol", False):
                    found[cls.__name__] = name
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
