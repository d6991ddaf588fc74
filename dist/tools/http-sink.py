#!/usr/bin/env python3
"""A tiny HTTP endpoint for the README walkthrough: prints every request it receives and answers 200.

Usage: python3 dist/tools/http-sink.py PORT
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        print(f"{self.command} {self.path} {body.decode('utf-8', 'replace')}", flush=True)
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT = do_GET = do_DELETE = do_HEAD = _handle

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
