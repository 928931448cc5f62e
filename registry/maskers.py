"""Built-in patch maskers (kind ``masker``) for JEPA-style objectives."""

from __future__ import annotations
