"""Every page under /ui, and how an application gets them (templates included).

Pages are not part of the API: they are left out of the OpenAPI document and of the API
key table (service.web.endpoints), and service.web.ui.guard decides who sees them. The
JSON record, the original and the PROV-O document are served under /ui too, by the API's
own handlers, because the session cookie is scoped to /ui: a logged-in browser can
follow every link a page shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp_jinja2
import jinja2
from aiohttp import web

from service.web import documents
from service.web.ui import PREFIX, find, pages

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

PAGES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", PREFIX, pages.home_redirect),
    ("GET", f"{PREFIX}/", find.find_page),
    ("GET", f"{PREFIX}/documents/{{id}}", pages.document_page),
    ("GET", f"{PREFIX}/documents/{{id}}/record", documents.get_document),
    ("GET", f"{PREFIX}/documents/{{id}}/original", documents.get_original),
    ("GET", f"{PREFIX}/documents/{{id}}/provenance", documents.get_provenance),
    ("GET", f"{PREFIX}/login", pages.login_form),
    ("POST", f"{PREFIX}/login", pages.log_in),
    ("POST", f"{PREFIX}/logout", pages.log_out),
    ("GET", f"{PREFIX}/static/vellum.css", pages.stylesheet),
)


def install_pages(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("service.web.ui", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
    )
    for method, path, handler in PAGES:
        if method == "GET":
            app.router.add_get(path, handler)  # HEAD too
        else:
            app.router.add_route(method, path, handler)
