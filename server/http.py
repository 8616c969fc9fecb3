"""What every JSON endpoint of the server shares: a JSON reply, and Tornado's own errors as JSON."""
from __future__ import annotations

import json

from tornado.web import RequestHandler


class JSONHandler(RequestHandler):
    def reply(self, status: int, payload: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors Tornado raises itself (a method other than GET) as JSON, saying what is allowed."""
        if status_code == 405:
            self.set_header("Allow", "GET")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": self._reason}))
