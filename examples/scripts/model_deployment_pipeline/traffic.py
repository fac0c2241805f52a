"""Prediction traffic through Baton's gateway while a canary is watched.

The lecture watches a canary on two hours of real traffic; the example has no CRM calling it,
so monitor_canary sends its own: labelled customers of data/holdout.csv (with their features,
so the answers can be scored against the true labels) and, one request in four, a customer id
of the bundled CRM (features from the online store, like the CRM would call it), at a steady rate to
$BATON_SERVER/serve/DEPLOYMENT/predict. The gateway counts requests, errors and latency per
version; the labels give each version's accuracy here (X-Baton-Version names who answered).
"""

import csv
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MIN_LABELLED = 20


def holdout_rows():
    with open(DATA_DIR / "holdout.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def crm_customers():
    records = json.loads((DATA_DIR / "crm.json").read_text()).get("records", [])
    return sorted(str(record["Customer_Id__c"]) for record in records if record.get("Customer_Id__c"))


class Traffic:
    """Sends requests from a background thread until stopped; per version it counts requests,
    errors (5xx or no answer) and correct answers on labelled customers."""

    def __init__(self, deployment, rate_per_second=20, server=None):
        self.url = (server or os.environ["BATON_SERVER"]).rstrip("/") + f"/serve/{deployment}/predict"
        self.interval = 1.0 / max(0.1, float(rate_per_second))
        self.labelled = holdout_rows()
        self.customers = crm_customers()
        self.stats = {}
        self.failures = 0        # no answer at all, or a gateway error without a version
        self.client_errors = 0   # 4xx: e.g. a customer without online features
        self.sent = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=15)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _body(self, index):
        # Three labelled customers for every CRM id: a 10 % canary needs labelled answers to be
        # judged on within a short watch.
        if index % 4 != 3 or not self.customers:
            row = self.labelled[(index - index // 4) % len(self.labelled)]
            # Without customer_id: the deployment routes customer_id sticky, which would pin the
            # few holdout customers to one version each; keyless requests are split by weight.
            features = {name: float(value) for name, value in row.items() if name not in ("customer_id", "churned")}
            return features, row["churned"] == "1"
        return {"customer_id": self.customers[(index // 4) % len(self.customers)]}, None

    def _send(self, body):
        headers = {"Content-Type": "application/json"}
        if os.environ.get("BATON_TOKEN"):
            headers["Authorization"] = "Bearer " + os.environ["BATON_TOKEN"]
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers.get("X-Baton-Version"), json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            error.read()
            return error.code, error.headers.get("X-Baton-Version"), None
        except (urllib.error.URLError, OSError, ValueError):
            return None, None, None

    def _run(self):
        index = 0
        next_at = time.monotonic()
        while not self.stopping.is_set():
            body, churned = self._body(index)
            index += 1
            status, version, answer = self._send(body)
            with self.lock:
                self.sent += 1
                if status is not None and 400 <= status < 500:
                    self.client_errors += 1
                elif version is None:
                    self.failures += 1
                else:
                    figures = self.stats.setdefault(version, {"requests": 0, "errors": 0, "labelled": 0, "correct": 0})
                    figures["requests"] += 1
                    if status is None or status >= 500 or not isinstance(answer, dict):
                        figures["errors"] += 1
                    elif churned is not None and "churn" in answer:
                        figures["labelled"] += 1
                        figures["correct"] += int(bool(answer["churn"]) == churned)
            next_at += self.interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def summary(self):
        """Per version: requests, errors and accuracy on labelled customers (None with fewer than
        MIN_LABELLED of them: too noisy to judge a version on)."""
        with self.lock:
            result = {}
            for version, figures in self.stats.items():
                accuracy = figures["correct"] / figures["labelled"] if figures["labelled"] >= MIN_LABELLED else None
                result[version] = dict(figures, accuracy=round(accuracy, 4) if accuracy is not None else None)
            return {"sent": self.sent, "failures": self.failures, "client_errors": self.client_errors,
                    "versions": result}
