"""The marketplace JSON API over HTTP (/api/...): routing, status codes and JSON bodies. What each
endpoint reads and answers, and its parameters, are `data/api.py`'s."""
from __future__ import annotations

from tornado.ioloop import IOLoop

from data.api import ENDPOINTS, BadParameter, MarketplaceApi, openapi_document
from data.errors import AppError

from .http import JSONHandler


def answer(api: MarketplaceApi, path: str, arguments: dict[str, list[str]]) -> tuple[int, dict]:
    """(HTTP status, JSON body) for a GET of `path` with its query arguments."""
    if path not in ENDPOINTS:
        return 404, {"error": f"There is no endpoint {path}.", "endpoints": sorted(ENDPOINTS)}
    try:
        return 200, api.read(path, arguments)
    except BadParameter as exc:
        return 400, {"error": exc.message, "parameter": exc.parameter}


class _Handler(JSONHandler):
    def initialize(self, api: MarketplaceApi) -> None:
        self.api = api


class ApiHandler(_Handler):
    """Reads run in a worker thread; a bad parameter is a 400 naming it, a database problem a 503
    with its category, never a traceback."""

    async def get(self) -> None:
        arguments = {name: [v.decode("utf-8", "replace") for v in values]
                     for name, values in self.request.query_arguments.items()}
        path = self.request.path.rstrip("/") or "/"
        try:
            status, body = await IOLoop.current().run_in_executor(None, answer, self.api, path, arguments)
        except AppError as exc:
            status, body = 503, {"error": exc.message, "category": exc.category.value}
        self.reply(status, body)


class OpenApiHandler(_Handler):
    async def get(self) -> None:
        try:
            document = await IOLoop.current().run_in_executor(None, self.api.openapi)
        except AppError:              # without the database, the document without the lists of values
            document = openapi_document()
        self.reply(200, document)


def api_routes(api: MarketplaceApi) -> list[tuple]:
    return [(r"/api/openapi\.json", OpenApiHandler, {"api": api}), (r"/api/.*", ApiHandler, {"api": api})]
