"""The container image every distml component runs in.

Defaults to the image built from images/tensorflow with a tag equal to the package version;
set DISTML_IMAGE before compiling (``DISTML_IMAGE=... distml compile``) to use your own
registry. The image holds this package, so component bodies only import and call it.
"""

from __future__ import annotations

import os

from distml import __version__

DEFAULT_IMAGE = f"ghcr.io/kfp-distml/distml:{__version__}"
COMPONENT_IMAGE = os.environ.get("DISTML_IMAGE", DEFAULT_IMAGE)
