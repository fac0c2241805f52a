# A serving replica for BatonDeploy's tests. How it behaves is part of the model version it
# serves: the file `behaviour` in $BATON_MODEL_DIR says `ok`, `errors` (every prediction
# answers 500), `slow MS` (each prediction waits MS milliseconds) or `sick` (the health check
# answers 503). The file is read on every request, so a test can change it while the replica runs.
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port = int(os.environ["BATON_PORT"])
model_dir = os.environ.get("BATON_MODEL_DIR", "")
version = os.environ.get("BATON_MODEL_VERSION", "")


def behaviour():
    try:
        with open(os.path.join(model_dir, "behaviour")) as handle:
            return handle.read().split()
    except OSError:
        return ["ok"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            if behaviour()[0] == "sick":
                self.answer(503, {"ok": False})
            else:
                self.answer(200, {"ok": True, "version": version})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        mode = behaviour()
        if mode[0] == "errors":
            self.answer(500, {"error": "broken model"})
            return
        if mode[0] == "slow":
            time.sleep(float(mode[1]) / 1000)
        self.answer(200, {"prediction": 0.25, "version": version, "env": os.environ.get("EXTRA", "")})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
