"""Security headers on every response, and a Content-Security-Policy for the page.

The policy allows only the scripts the server itself puts in the page (each gets this response's
nonce) and those it serves from its own origin. So a script or event handler that found its way
into the page as markup would not run, nor would a `javascript:` link. What it still allows, and why:

- `'unsafe-eval'`: Bokeh's WebGL bundle (regl) compiles functions from strings when it loads,
  Bokeh's table formatters compile their templates, Panel's JS links compile code strings;
- `blob:` scripts and fetches: Panel loads each component's ES module (our browser-drawn
  components, Material UI's) from a blob URL;
- inline styles: Material UI (emotion) and Bokeh set styles from script;
- images from any https address: catalog tables may point at product images elsewhere;
- frames from the AI/BI dashboard's workspace only, when one is configured.
"""
from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from tornado.web import OutputTransform

_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])")


def content_security_policy(nonce: str, frame_origins: tuple[str, ...] = ()) -> str:
    frames = " ".join(("'self'", *frame_origins))
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https:",
        "font-src 'self' data:",
        "connect-src 'self' blob:",
        f"frame-src {frames}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ])


def origin(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def security_headers(frame_origins: tuple[str, ...] = ()) -> type[OutputTransform]:
    """A Tornado output transform (one instance per request) adding the headers; an HTML page also
    gets a fresh nonce on each of its own <script> tags and the policy that names it."""

    class SecurityHeaders(OutputTransform):
        def transform_first_chunk(self, status_code, headers, chunk, finishing):
            headers["X-Content-Type-Options"] = "nosniff"
            headers["Referrer-Policy"] = "same-origin"
            headers["X-Frame-Options"] = "SAMEORIGIN"
            if headers.get("Content-Type", "").startswith("text/html"):
                nonce = secrets.token_urlsafe(18)
                chunk = _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', chunk)
                if "Content-Length" in headers:
                    headers["Content-Length"] = str(len(chunk))
                headers.pop("Etag", None)           # a cached page would carry an old nonce
                headers["Cache-Control"] = "no-store"
                headers["Content-Security-Policy"] = content_security_policy(nonce, frame_origins)
            return status_code, headers, chunk

    return SecurityHeaders
