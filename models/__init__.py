"""Trained model artifacts shipped with the product (see MODEL_CARD.md beside each)."""

from pathlib import Path

#: The shipped tagger: `tagger.npz` (arrays), `tagger.json` (metadata, checksum) and MODEL_CARD.md.
TAGGER_DIR = Path(__file__).parent / "tagger"
