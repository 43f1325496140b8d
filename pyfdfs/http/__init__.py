"""HTTP access to stored files: the sans-I/O pieces (spec: http.md).

URL parsing, anti-steal tokens, byte ranges, validators and content types are pure
functions here; the aiohttp servers in ``pyfdfs/storage/http_server.py`` and
``pyfdfs/tracker/http_server.py`` only move bytes.
"""
