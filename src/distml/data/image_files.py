"""Opening image files named by a dataset: refuse a decompression bomb by its header, before any pixel is decoded.

PIL checks an image's pixel count when it opens the file: above ``Image.MAX_IMAGE_PIXELS``
(about 89 million) it only warns, above twice that it raises ``DecompressionBombError``
(Pillow src/PIL/Image.py, ``_decompression_bomb_check``). A small PNG can declare 50000 x 50000
pixels; decoding and converting it would take gigabytes. Both levels are refused here, with
one line naming the image, instead of a warning or a traceback.
"""

from __future__ import annotations

import os
import warnings

from PIL import Image as PILImage

from distml.errors import DistmlError


def open_image(path: str | os.PathLike[str], *, where: str) -> PILImage.Image:
    """``PIL.Image.open(path)`` (lazy: only the header is read), refusing images above PIL's pixel limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            return PILImage.open(path)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as err:
        raise DistmlError(
            f"image {path} is too large to decode safely: {err}",
            where=where,
            hint=f"Resize it below {PILImage.MAX_IMAGE_PIXELS} pixels, or leave it out of the dataset.",
        ) from None
