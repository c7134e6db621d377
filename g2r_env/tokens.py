"""Token-level text: the piece of text each token adds (for rendering and for mapping credit across
tokenizers by character overlap)."""

from __future__ import annotations

import os
from collections.abc import Sequence


def token_pieces(tokenizer, token_ids: Sequence[int]) -> list[str]:
    """The text each token adds, so that the pieces join into the decoded response.

    Decoding token by token breaks characters that span several byte-level tokens; decoding each
    prefix and keeping only completed characters does not: a token that ends inside a character
    adds "" and the token that completes it adds the whole character.
    """
    pieces, done = [], ""
    for n in range(1, len(token_ids) + 1):
        text = tokenizer.decode(list(token_ids[:n]))
        stable = text if n == len(token_ids) else text.rstrip("\ufffd")
        keep = len(done) if stable.startswith(done) else len(os.path.commonprefix([done, stable]))
        pieces.append(stable[keep:])
        done = stable
    return pieces
