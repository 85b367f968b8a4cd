"""The yardstick for GET /api/v1/users/me: a bare FastAPI app whose one endpoint only verifies
the caller's ES256 access token, with SproutGate's own verifier and keys, and answers a small
JSON body. No middleware, no database.

Run by bench/run_core.py as its own process, under uvicorn with the settings ``sproutgate
serve`` uses: ``python bench/bare_jwt.py DATA_DIR PORT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request

from sproutgate.domain.clock import Clock
from sproutgate.infra.keys import load_signing_keys
from sproutgate.infra.tokens import InvalidToken, JwtSigner, TokenClaims


def create_bare_app(data_dir: Path, issuer: str = "sproutgate") -> FastAPI:
    signer = JwtSigner(load_signing_keys(data_dir), issuer, clock=Clock())
    app = FastAPI()

    # async: FastAPI would run a plain def dependency in its thread pool.
    async def claims(request: Request) -> TokenClaims:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise HTTPException(401)
        try:
            return signer.verify(token.strip(), audience="sproutgate:api", token_type="at+jwt")
        except InvalidToken:
            raise HTTPException(401) from None

    @app.get("/me")
    async def me(c: TokenClaims = Depends(claims)) -> dict[str, str]:
        return {"id": c.user_id, "session_id": c.session_id}

    return app


def main() -> None:
    data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    # The same uvicorn settings as `sproutgate serve` (cli.serve): loop and HTTP parser on
    # "auto" (uvloop, httptools), no access log, no proxy headers, no server header.
    uvicorn.run(
        create_bare_app(data_dir),
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
