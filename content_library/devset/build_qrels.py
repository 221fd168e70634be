"""Grade every (request, asset) pair of the development set from curated labels and topic judgements.

Run from the repository root: `python content_library/devset/build_qrels.py` writes qrels.jsonl.

The judgements (judgements.jsonl) were written by a person for each request, without the engine:
which of the vendor's topics the query is about (`topics`), which are partly relevant
(`related_topics`), and the stage a careful marketer infers from the request (`expected_stage`).
The grade of an asset then follows from its curated labels by fixed rules (README.md here), so
anyone can check a grade by hand and no grade was chosen by looking at a ranking.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from content_library import SAMPLE_LIBRARY, load_library  # noqa: E402
from content_library.schema import Stage  # noqa: E402

STAGES = [s.value for s in Stage]


def grade(request: dict, judgement: dict, asset) -> int:
    if request.get("query"):
        topic = 2 if asset.topic in judgement["topics"] else 1 if asset.topic in judgement["related_topics"] else 0
    else:
        topic = 2  # no query: the buyer's fit alone decides
    segment_ok = request["segment"] in asset.segments
    expected = STAGES.index(judgement["expected_stage"])
    distance = min(abs(STAGES.index(s.value) - expected) for s in asset.stages)
    role_ok = request.get("role") is None or request["role"] in asset.roles
    if not segment_ok:
        base = 1 if topic == 2 and distance == 0 and role_ok else 0
    elif topic == 2:
        base = 3 if distance == 0 and role_ok else 2 if distance == 0 or (distance == 1 and role_ok) else 1
    elif topic == 1:
        base = 2 if distance == 0 and role_ok else 1 if distance <= 1 else 0
    else:
        base = 0
    language = request.get("language")
    if language and asset.language != language:
        base = max(base - 1, 0)
    return base


def main() -> None:
    assets = load_library(SAMPLE_LIBRARY).assets
    by_vendor: dict[str, list] = {}
    for asset in assets:
        by_vendor.setdefault(asset.id.split("-")[0], []).append(asset)
    requests = {r["qid"]: r for r in map(json.loads, (HERE / "requests.jsonl").read_text().splitlines())}
    judgements = [json.loads(line) for line in (HERE / "judgements.jsonl").read_text().splitlines()]
    lines = []
    for judgement in judgements:
        request = requests[judgement["qid"]]
        for asset in by_vendor[judgement["vendor"]]:
            if value := grade(request, judgement, asset):
                lines.append(json.dumps({"qid": judgement["qid"], "id": asset.id, "grade": value}))
    (HERE / "qrels.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} judgements for {len(judgements)} requests to {HERE / 'qrels.jsonl'}")


if __name__ == "__main__":
    main()
