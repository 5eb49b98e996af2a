"""FakeDiscord's CDN: the avatars and server icons the app links to, as small solid-colour PNGs.

The demo and browser tests run offline, so ``cdn.discordapp.com`` cannot answer; the app derives its CDN
from ``DISCORD_ROLES_API_BASE_URL`` and asks FakeDiscord instead, which draws a picture per id.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib

from werkzeug.wrappers import Request

import flask_discord_roles.testing.protocol as p

__all__ = ["DEFAULT_AVATAR_COLOURS", "SIZE", "serve_image", "solid_png"]

# Discord's default avatars (new username system: ``(user_id >> 22) % 6``), by their colours.
DEFAULT_AVATAR_COLOURS = (
    (0x58, 0x65, 0xF2),
    (0x75, 0x7E, 0x8A),
    (0x3B, 0xA5, 0x5C),
    (0xFA, 0xA6, 0x1A),
    (0xED, 0x42, 0x45),
    (0xEB, 0x45, 0x9E),
)
SIZE = 64
_PATHS = (
    re.compile(r"/embed/avatars/(?P<index>[0-5])\.png"),
    re.compile(r"/(?:avatars|icons)/(?P<owner>\d+)/(?P<hash>\w+)\.(?:png|gif|webp|jpg)"),
)


def solid_png(colour: tuple[int, int, int], size: int = SIZE) -> bytes:
    """A square PNG, ``size`` pixels a side, of one colour (8-bit RGB, no filter)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(colour) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def serve_image(request: Request) -> p.Reply | None:
    """The picture for a CDN path, or None when the path is not one."""
    if request.method != "GET":
        return None
    for pattern in _PATHS:
        found = pattern.fullmatch(request.path)
        if found is None:
            continue
        if "index" in found.groupdict():
            colour = DEFAULT_AVATAR_COLOURS[int(found["index"])]
        else:
            digest = hashlib.sha256(f"{found['owner']}/{found['hash']}".encode()).digest()
            colour = (digest[0], digest[1], digest[2])
        return p.Reply(200, solid_png(colour), "image/png", {"Cache-Control": "max-age=86400"})
    return None
