"""The HTTP edge (aiohttp): routes, middlewares, body reading, serving.

The only package, with `service.app` and `service.cli`, that imports `aiohttp.web`.
"""
