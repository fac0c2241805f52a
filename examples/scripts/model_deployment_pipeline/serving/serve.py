#!/usr/bin/env python3
"""Churn model server: one replica of the deployment `churn` (pipelines/deployments.yaml).

Baton starts it with everything in the environment (docs/model-deployments.md):

    BATON_PORT            the loopback port to listen on (127.0.0.1)
    BATON_MODEL_DIR       the model version's artifact folder: model.json (as the trainers save it),
                          or a serving artifact built by build_serving_container (with manifest.json)
    BATON_MODEL_VERSION   the registry version (else manifest.json's model_version)
    BATON_SERVER          Baton, for the online feature store ($BATON_SERVER/api/v1/features/online)
    BATON_TOKEN           sent to the feature store when set
    BATON_HOST            the address to listen on (default 127.0.0.1; e.g. 0.0.0.0 in a container)

    GET  /health   200 {"status": "ok", "model_version": "3", ...} once the model is loaded
    POST /predict  {"customer_id": "C0001"}                  features from the online store
                   {"total_spend": 120.5, "txn_count": 4, ...} features in the body
                   {"rows": [{...}, {"customer_id": ...}]}    several at once
       -> {"prediction": 0.42, "churn_probability": 0.42, "churn": false, "model_version": "3"}
          or {"predictions": [{...}, ...], "model_version": "3"} for rows.
          400 for a body that is not JSON, 422 when a customer has no features (client errors:
          the gateway counts only 5xx as the version's errors).

Test knobs, for exercising canary analysis and supervision (unset in real deployments):

    BATON_SERVE_FAIL_RATE     share of /predict requests answered 500 (0..1)
    BATON_SERVE_DELAY_MS      added delay per /predict request, in milliseconds
    BATON_SERVE_STARTUP_MS    delay before listening (a replica slow to become healthy)

Run by hand: BATON_PORT=8765 BATON_MODEL_DIR=DIR python3 serve.py
Standard library only; one log line per request at most, on stderr (LOG_LEVEL=warning: errors only).
"""

import http.server
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
# churn_model.py sits next to this file in a serving artifact, and in scripts/common in the repo.
for folder in (HERE, HERE.parents[1] / "common"):
    if (folder / "churn_model.py").is_file():
        sys.path.insert(0, str(folder))
        break
import churn_model  # noqa: E402

FEATURE_SERVICE = "churn_model"
MAX_BODY = 1 << 20


class Model:
    def __init__(self, folder):
        folder = Path(folder)
        self.model = churn_model.load_model(folder / "model.json")
        manifest = folder / "manifest.json"
        meta = json.loads(manifest.read_text()) if manifest.is_file() else {}
        version = os.environ.get("BATON_MODEL_VERSION") or meta.get("model_version")
        self.version = str(version) if version is not None else None
        self.features = list(self.model["features"])


def env_float(name, default=0.0):
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {os.environ.get(name)!r}")


class ClientError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def online_features(customer_ids):
    """The latest features of each customer from Baton's online store, in one request."""
    server = os.environ.get("BATON_SERVER")
    if not server:
        raise ClientError(422, "rows without features need the online feature store, and BATON_SERVER is not set")
    body = json.dumps({"service": FEATURE_SERVICE,
                       "entities": [{"customer_id": customer} for customer in customer_ids]}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("BATON_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["BATON_TOKEN"]
    request = urllib.request.Request(server.rstrip("/") + "/api/v1/features/online", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    return {result["entity"]["customer_id"]: result.get("values") or {} for result in answer.get("results", [])}


def score(model, rows):
    """One answer per row; rows naming only a customer get their features from the online store."""
    for row in rows:
        if not isinstance(row, dict):
            raise ClientError(400, f"each row must be a JSON object, got {type(row).__name__}")
    wanted = [str(row["customer_id"]) for row in rows
              if "customer_id" in row and not any(name in row for name in model.features)]
    found = online_features(wanted) if wanted else {}
    answers = []
    for row in rows:
        customer = row.get("customer_id")
        if customer is not None and not any(name in row for name in model.features):
            values = found.get(str(customer)) or {}
            missing = [name for name in model.features if values.get(name) is None]
            if missing:
                raise ClientError(422, f"the online store has no value of {', '.join(missing)} for customer {customer}")
            row = dict(row, **values)
        try:
            result = churn_model.predict(model.model, row)
        except (ValueError, TypeError) as error:
            raise ClientError(422, str(error))
        probability = result["churn_probability"]
        answer = {"prediction": probability, "churn_probability": probability, "churn": bool(result["churn"]),
                  "model_version": model.version}
        if customer is not None:
            answer["customer_id"] = customer
        answers.append(answer)
    return answers


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "churn-serve/1"
    protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses connections

    def log_message(self, *args):
        pass  # one line per request, written by `reply` instead

    def reply(self, status, document, started):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        quiet = os.environ.get("LOG_LEVEL", "info").lower() in ("warning", "error")
        if not quiet or status >= 500:
            print(f"{self.command} {self.path} {status} {(time.perf_counter() - started) * 1000:.1f}ms",
                  file=sys.stderr, flush=True)

    def do_GET(self):
        started = time.perf_counter()
        model = self.server.model
        if self.path.split("?")[0] == "/health":
            self.reply(200, {"status": "ok", "model_version": model.version, "algorithm": model.model.get("algorithm"),
                             "features": model.features}, started)
        else:
            self.reply(404, {"error": {"code": "not_found", "message": f"no route GET {self.path}"}}, started)

    def do_POST(self):
        with self.server.lock:
            self.server.in_flight += 1
        try:
            self.predict()
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def predict(self):
        started = time.perf_counter()
        if self.path.split("?")[0] != "/predict":
            self.reply(404, {"error": {"code": "not_found", "message": f"no route POST {self.path}"}}, started)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self.reply(413, {"error": {"code": "too_large", "message": f"body over {MAX_BODY} bytes"}}, started)
            return
        raw = self.rfile.read(length) if length else b""
        delay = self.server.delay_ms
        if delay > 0:
            time.sleep(delay / 1000)
        if self.server.fail_rate > 0 and random.random() < self.server.fail_rate:
            self.reply(500, {"error": {"code": "injected", "message": "BATON_SERVE_FAIL_RATE"}}, started)
            return
        model = self.server.model
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError as error:
                raise ClientError(400, f"the body is not JSON: {error}")
            if not isinstance(body, dict):
                raise ClientError(400, 'send a JSON object: {"customer_id": ...}, the features, or {"rows": [...]}')
            if "rows" in body:
                rows = body["rows"]
                if not isinstance(rows, list):
                    raise ClientError(400, '"rows" must be a list of objects')
                self.reply(200, {"predictions": score(model, rows), "model_version": model.version}, started)
            else:
                self.reply(200, score(model, [body])[0], started)
        except ClientError as error:
            self.reply(error.status, {"error": {"code": "bad_request" if error.status == 400 else "unprocessable",
                                                "message": str(error)}}, started)
        except (urllib.error.URLError, OSError, ValueError) as error:
            # The feature store is down or answered garbage: the replica cannot do its job.
            self.reply(503, {"error": {"code": "features_unavailable", "message": f"online feature store: {error}"}}, started)


class Server(http.server.ThreadingHTTPServer):
    # Daemon threads: an idle keep-alive connection must not hold up the exit after a drain.
    daemon_threads = True
    allow_reuse_address = True
    in_flight = 0
    lock = threading.Lock()

    def wait_for_requests(self, seconds):
        deadline = time.monotonic() + seconds
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)


def main():
    port = os.environ.get("BATON_PORT")
    folder = os.environ.get("BATON_MODEL_DIR")
    if not port or not folder:
        raise SystemExit("serve.py needs BATON_PORT and BATON_MODEL_DIR (Baton sets both for a deployment's replicas)")
    model = Model(folder)
    startup = env_float("BATON_SERVE_STARTUP_MS")
    if startup > 0:
        time.sleep(startup / 1000)
    host = os.environ.get("BATON_HOST") or "127.0.0.1"
    server = Server((host, int(port)), Handler)
    server.model = model
    server.fail_rate = env_float("BATON_SERVE_FAIL_RATE")
    server.delay_ms = env_float("BATON_SERVE_DELAY_MS")
    print(f"serving churn model v{model.version} ({model.model.get('algorithm')}) on {host}:{port}",
          file=sys.stderr, flush=True)
    stop = threading.Event()

    def drain(*_):
        # Baton drains a replica with SIGTERM: finish the requests in flight, then exit.
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    try:
        server.serve_forever(poll_interval=0.2)
        server.wait_for_requests(5)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
