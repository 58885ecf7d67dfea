"""The minimal emergency-phrase check: any message that contains an emergency phrase.

The full alert rules (tiers, thresholds) build on this; the phrases are data in
messages/emergency_phrases.yaml so the clinical team can tune them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def mentions_emergency(text: str, phrases: Sequence[str]) -> bool:
    """True if the message contains any emergency phrase, ignoring case and width."""
    said = unicodedata.normalize("NFKC", text).casefold()
    return any(unicodedata.normalize("NFKC", p).casefold() in said for p in phrases if p.strip())
