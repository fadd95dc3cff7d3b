"""``python -m bench.reliability_page``: write the fault suite's figures into
``docs/reliability.md``'s generated block (``make reliability`` runs it after the suite).

The suite (``tests/test_faults.py``) records one row per fault in
``bench/results/reliability.json`` at full sizes (``bench/results/smoke/`` at the small sizes
``make test`` runs, which never reach the page).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.pages import END, rewrite_block
from bench.results import RESULTS_DIR, fmt, machine

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
RESULTS = RESULTS_DIR / "reliability.json"
START = "<!-- generated:start (make reliability rewrites this block) -->"
SKELETON = f"# Reliability\n\n{START}\n{END}\n"


def render(data: dict[str, Any]) -> str:
    faults = data.get("faults", {})
    lines = [START, ""]
    if not faults:
        return "\n".join([*lines, "_No results yet: run `make reliability`._", "", END])
    mach = data.get("machine") or machine()
    first = min(r["measured_at"] for r in faults.values())
    last = max(r["measured_at"] for r in faults.values())
    lines += [
        f"`make reliability` (sizes `{next(iter(faults.values()))['size']}`), measured {first} "
        f"to {last} on {mach['cores']} cores, Python {mach['python']}. Objects = acknowledged "
        "puts during the fault (bad ones included); quarantined = the empty objects among "
        "them, each quarantined; recovery = from the fault (or the end of a planned outage) "
        "until an object put then was queryable.",
        "",
        "| fault | objects | lost | doubled | quarantined | recovery s | problems |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in faults.items():
        problems = "; ".join(f"{k}: {v}" for k, v in (r.get("problems") or {}).items()) or "-"
        lines.append(
            f"| {name} | {r['objects']:,} | {r['lost']} | {r['doubled']} | {r['quarantined']} "
            f"| {fmt(r['recovery_s'])} | {problems} |"
        )
    return "\n".join([*lines, "", END])


def regenerate(results: Path = RESULTS) -> Path:
    data = json.loads(results.read_text()) if results.exists() else {}
    return rewrite_block(PAGE, START, render(data), SKELETON)


if __name__ == "__main__":
    print(regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
