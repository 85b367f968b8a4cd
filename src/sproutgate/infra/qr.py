"""QR codes as SVG, drawn by segno (pure Python, no image library; docs/decisions/second-factors.md)."""

from __future__ import annotations

import io

import segno


def qr_svg(text: str, title: str = "") -> str:
    """``text`` as a QR code (error correction M, 4 px modules, a 4-module quiet zone): one
    ``<svg>`` element with its namespace and no XML declaration, so it can be placed in an HTML
    page as it is or saved as an ``.svg`` file."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        out,
        kind="svg",
        scale=4,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        svgns=True,
        nl=False,
        title=title or None,
    )
    return out.getvalue().decode()
