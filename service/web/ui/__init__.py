"""The pages under /ui: a record viewer and a find page, rendered on the server.

Jinja2 templates (autoescaped: article text is never markup) through aiohttp-jinja2, one
static stylesheet, no script at all. `routes` lists the pages, `guard` is their
middleware (security headers, the session cookie, HTML error pages), `session` signs
and checks the cookie, `pages` holds the handlers. Nothing here imports the submodules,
so service.web.auth can name the prefix without a cycle.
"""

PREFIX = "/ui"
