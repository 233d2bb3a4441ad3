"""Every ``_target_`` a shipped config names was built by the suite (issue #26).

``make test`` runs every tier with ``CLASSROOM_TARGETS_LOG`` set: each process that
builds a ``_target_`` from a config (a task loader, a policy, a learner, a proposer;
:func:`classroom.agents.config_validation.record_target`) appends its name to that file, Ray's
workers and the runs a test starts included. Then this script reads ``conf/`` and fails,
naming each one, if a shipped ``_target_`` was never built:

    python tests/support/targets_built.py LOG
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _targets(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                yield value
            else:
                yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)


def shipped_targets(conf: Path = REPO / "conf") -> dict[str, list[str]]:
    """Each ``_target_`` named in ``conf``'s YAML files -> the files that name it."""
    named: dict[str, list[str]] = {}
    for path in sorted(conf.rglob("*.yaml")):
        for target in _targets(yaml.safe_load(path.read_text())):
            named.setdefault(target, []).append(str(path.relative_to(conf)))
    return named


def unbuilt(log: Path, conf: Path = REPO / "conf") -> dict[str, list[str]]:
    built = set(log.read_text().split()) if log.is_file() else set()
    return {target: files for target, files in shipped_targets(conf).items() if target not in built}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: targets_built.py LOG", file=sys.stderr)
        return 2
    missing = unbuilt(Path(argv[0]))
    named = shipped_targets()
    if missing:
        for target, files in missing.items():
            print(f"never built by the suite: {target} (named by conf/{', conf/'.join(files)})", file=sys.stderr)
        print(f"{len(missing)} of the {len(named)} _target_s conf/ names were never built: add a test that runs them", file=sys.stderr)
        return 1
    print(f"every one of the {len(named)} _target_s conf/ names was built by the suite")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
