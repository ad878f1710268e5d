#!/usr/bin/env python3
"""A fake Engine API on a unix socket that records what clients send.

compare_with_docker.sh runs `docker create ...` and `berth create ...` against
it and compares the recorded request bodies: that is the only way to check
that both clients send the same ContainerConfig/HostConfig/NetworkingConfig
JSON for every flag, independent of what a daemon does with it.

    capture_server.py SOCKET LOGFILE

Every request is appended to LOGFILE as one JSON line
{"method", "path", "body"}. /_ping answers with API 1.44; container create
answers with a fixed ID, volume create with a fixed name; everything else
with 404.
"""
import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler

SOCKET, LOG = sys.argv[1], sys.argv[2]
FAKE_ID = "c0ffee" + "0" * 58


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass

    def _reply(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        self.send_header("Api-Version", "1.44")
        self.send_header("Ostype", "linux")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/_ping":
            return self._reply(200, b"OK", "text/plain")
        with open(LOG, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "body": body.decode("utf-8", "replace")}) + "\n")
        if "/volumes/create" in self.path:
            return self._reply(201, json.dumps({"Name": "captured"}).encode())
        if "/containers/create" in self.path:
            return self._reply(201, json.dumps({"Id": FAKE_ID, "Warnings": []}).encode())
        return self._reply(404, b'{"message":"not served by the capture server"}')

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = _handle


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
Server(SOCKET, Handler).serve_forever()
