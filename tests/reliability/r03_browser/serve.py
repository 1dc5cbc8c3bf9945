"""Serves the R03 page on a loopback port and appends each /report to a file.

Usage: serve.py PORT REPORT_FILE. Standard library only.
"""

import http.server
import pathlib
import sys
import urllib.parse

PAGE = (pathlib.Path(__file__).parent / "page.html").read_bytes()
PORT = int(sys.argv[1])
REPORTS = pathlib.Path(sys.argv[2])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/report":
            query = urllib.parse.parse_qs(url.query)
            name = query.get("name", ["?"])[0]
            outcome = query.get("outcome", ["?"])[0].replace("\n", " ")
            with REPORTS.open("a") as reports:
                reports.write(f"{name}: {outcome}\n")
            self.send_response(204)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format, *args):
        sys.stderr.write(f"page server: {format % args}\n")


http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
