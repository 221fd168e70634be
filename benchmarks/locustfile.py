"""The load of the HTTP benchmark: `locust -f benchmarks/locustfile.py --headless ...`.

BENCH_ROUTE picks what every simulated client sends, back to back (no think time), so a fixed
number of clients is a fixed concurrency: `empty` (the baseline route), `recommend` (a buyer
without a query, cycling through 156 buyer contexts) or `query` (the same with a new search text
on every request, so the model runs each time).
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, constant, task

_SEGMENTS = ("enterprise", "smb")
_STAGES = ("awareness", "consideration", "decision", "retention")
_ROLES = (None, "executive", "finance", "it", "procurement", "end_user", "owner")
_LANGUAGES = (None, "en", "de")
_WORDS = ("invoice approval", "van routes", "shift planning", "ERP integration", "Rechnungsfreigabe", "ROI")
_counter = itertools.count()


def _buyers() -> list[dict]:
    out = []
    for segment, stage, role, language in itertools.product(_SEGMENTS, _STAGES, _ROLES, _LANGUAGES):
        if (segment, role) == ("smb", "executive"):
            continue  # read as the owner: the same context twice
        body = {"segment": segment, "stage": stage, "k": 10}
        if role:
            body["role"] = role
        if language:
            body["language"] = language
        out.append(body)
    return out


class Client(FastHttpUser):
    wait_time = constant(0)
    route = os.environ.get("BENCH_ROUTE", "recommend")
    buyers = _buyers()

    @task
    def send(self) -> None:
        i = next(_counter)
        body = dict(self.buyers[i % len(self.buyers)])
        if self.route == "query":
            body["query"] = f"{_WORDS[i % len(_WORDS)]} {i}"
        path = "/bench/empty" if self.route == "empty" else "/v1/recommendations"
        self.client.post(path, json=body, name=self.route)
