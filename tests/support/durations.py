"""Where the suite's time goes: every test's seconds from the JUnit XML `make test`
writes (.pytest_cache/durations-*.xml), summed by file, then the slowest tests.

    python tests/support/durations.py .pytest_cache/durations-integration.xml [--top 30]
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import defaultdict


def durations(path: str) -> list[tuple[str, float]]:
    """(test id, seconds) for every test case of a JUnit XML file (setup, call and teardown)."""
    cases = ET.parse(path).getroot().iter("testcase")
    return [(f"{case.get('classname', '')}::{case.get('name', '')}", float(case.get("time", 0.0))) for case in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml", nargs="+")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    tests = [t for path in args.xml for t in durations(path)]
    by_file: dict[str, float] = defaultdict(float)
    for test, seconds in tests:
        by_file[test.split("::")[0]] += seconds
    total = sum(seconds for _, seconds in tests)
    print(f"{len(tests)} tests, {total:,.0f} s")
    for name, seconds in sorted(by_file.items(), key=lambda item: -item[1]):
        print(f"{seconds:8.0f} s {100 * seconds / total:5.1f}%  {name}")
    print(f"slowest {args.top}:")
    for test, seconds in sorted(tests, key=lambda item: -item[1])[: args.top]:
        print(f"{seconds:8.1f} s  {test}")


if __name__ == "__main__":
    main()
