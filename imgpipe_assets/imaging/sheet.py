"""A contact sheet: one row per product (source, cut-out, every theme), labelled."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def contact_sheet(
    headers: Sequence[str],
    rows: Sequence[tuple[str, Sequence[np.ndarray | None]]],
    cell: int = 320,
    label_h: int = 28,
) -> np.ndarray:
    """RGB uint8 sheet; a missing image (None) is drawn as an empty grey cell."""
    cols = len(headers)
    width = cols * cell
    height = label_h + len(rows) * (cell + label_h)
    sheet = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for c, header in enumerate(headers):
        draw.text((c * cell + 8, 8), header, fill=(40, 40, 40), font=font)
    for r, (label, images) in enumerate(rows):
        top = label_h + r * (cell + label_h)
        draw.text((8, top + 6), label, fill=(20, 20, 20), font=font)
        for c, image in enumerate(images[:cols]):
            x, y = c * cell, top + label_h
            if image is None:
                draw.rectangle([x + 4, y + 4, x + cell - 4, y + cell - 4], fill=(225, 225, 225))
                continue
            im = Image.fromarray(image).convert("RGB")
            im.thumbnail((cell - 8, cell - 8), Image.Resampling.LANCZOS)
            sheet.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
    return np.asarray(sheet)
