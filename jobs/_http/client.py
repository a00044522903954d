"""The `httpx.AsyncClient` a client makes for itself: httpx's, with a cookie jar that
looks at a response only when it sets a cookie.

httpx hands every response to `Cookies.extract_cookies`, which wraps the response and
its request in urllib objects for `http.cookiejar` (copying both header sets) only for
the jar to find no `Set-Cookie` header: two such responses per job, a tenth of the
client's CPU per job (`bench/bench_runner.py --profile`). Apps set a cookie when a user
logs in, and on little else.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["HttpClient"]

#: What `http.cookiejar` reads cookies from (the second only under RFC 2965 policies).
_SETS_COOKIE = ("set-cookie", "set-cookie2")


class _Cookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if any(name in headers for name in _SETS_COOKIE):
            super().extract_cookies(response)


class HttpClient(httpx.AsyncClient):
    """`httpx.AsyncClient` with the same options and behaviour, cookies included: those
    the server sets are kept and sent back exactly as httpx does it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The jar httpx made of `cookies=` (shared, when that was a CookieJar), in ours.
        self.cookies = super().cookies.jar

    @property
    def cookies(self) -> httpx.Cookies:
        return self.__cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self.__cookies = _Cookies(cookies)
