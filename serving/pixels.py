"""The pixel limit of a prediction image, read from its header: a small file can claim a huge
picture (one colour compresses to almost nothing), and decoding costs by the pixel.

    too_many_pixels(content)    # the refusal's message, or None

The web process refuses such an image before it is queued (413 on `image`); an instance checks
again before it decodes (a request queued by an older web process, or by anything else).
"""

import io

from django.conf import settings
from PIL import Image, UnidentifiedImageError


def too_many_pixels(content: bytes) -> str | None:
    """Why the image claims more pixels than SERVING_MAX_IMAGE_PIXELS, or None (also None when
    the header does not read: the decoder's checks answer that)."""
    limit = settings.SERVING_MAX_IMAGE_PIXELS
    try:
        # (no warnings.catch_warnings here: it is not thread-safe, and this runs in a pool;
        # Pillow's DecompressionBombWarning for such an image is harmless)
        with Image.open(io.BytesIO(content)) as probe:  # the header only
            width, height = probe.size
    except Image.DecompressionBombError:  # Pillow's own ceiling (twice MAX_IMAGE_PIXELS)
        return (f"The image has more than {2 * Image.MAX_IMAGE_PIXELS} pixels; at most "
                f"{limit} are accepted. Resize it before predicting.")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    if width * height <= limit:
        return None
    return (f"The image is {width}x{height}, {width * height} pixels; at most {limit} are "
            "accepted. Resize it before predicting.")
