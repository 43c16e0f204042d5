"""The HTTP edge (aiohttp): routes, middlewares, body reading, serving.

The only package, with `service.app`, that imports `aiohttp.web` (`service.arbiter`
uses aiohttp's gunicorn worker, which serves through `service.web.server`).
"""
