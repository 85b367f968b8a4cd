"""Back-channel logout over HTTP: ``infra.backchannel.LogoutTransport`` on httpx."""

from __future__ import annotations

import httpx

from sproutgate.infra.backchannel import LogoutRefused


class HttpLogoutTransport:
    """The real transport: httpx, a bounded timeout, no redirects followed (§2.5 names one
    URI; a redirect is an answer that is not 2xx), no cookies kept, caching forbidden. The
    connection pool is made on the first delivery (a CLI command that never delivers opens
    none)."""

    def __init__(self, timeout_seconds: float, user_agent: str = "SproutGate back-channel logout") -> None:
        self._timeout = httpx.Timeout(timeout_seconds)
        self._headers = {"User-Agent": user_agent, "Cache-Control": "no-store"}
        self._client: httpx.AsyncClient | None = None

    async def deliver(self, uri: str, form: dict[str, str]) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, headers=self._headers
            )
        response = await self._client.post(uri, data=form)
        # A fresh jar for every answer: one client's cookies are never sent to the next.
        self._client.cookies.clear()
        if not 200 <= response.status_code < 300:
            raise LogoutRefused(response.status_code, response.text)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
