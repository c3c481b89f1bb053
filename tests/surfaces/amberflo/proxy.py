"""A loopback HTTP proxy in front of a live meterd that fails chosen requests, to exercise client retries.

Each planned fault applies to the next POST whose path starts with ``/ingest``: ``"429"`` and ``"500"`` answer
without forwarding; ``"lost-ack"`` forwards (meterd stores the batch) and then answers 500, as a lost response
would look to the client. Every request is logged as (method, path, status answered).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str, faults: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = urlsplit(target)
        self.faults = list(faults)
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_fault(self, method: str, path: str) -> str | None:
        with self.lock:
            if method == "POST" and path.startswith("/ingest") and self.faults:
                return self.faults.pop(0)
            return None


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = self.server.next_fault(self.command, self.path)
        if fault in ("429", "500"):
            self._answer(int(fault), b"injected fault", {"content-type": "text/plain"})
            return
        status, headers, payload = self._forward(body)
        if fault == "lost-ack":
            status, headers, payload = 500, {"content-type": "text/plain"}, b"injected: response lost"
        self._answer(status, payload, headers)

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        target = self.server.target
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP}
            return response.status, kept, payload
        finally:
            conn.close()

    def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        with self.server.lock:
            self.server.log.append((self.command, self.path, status))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def fault_proxy(target: str, faults: list[str]) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target, faults)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)
