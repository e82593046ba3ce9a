"""Word-level CLIPTokenizer for the mini grammar, built in code (no download).

CLIP's BPE gives a word one token only if merges.txt holds the merges that build it from its characters;
otherwise it falls apart into characters. We add, word by word, the merge of the first two pieces the
current merges leave, until every grammar word is one token. A merge appended later has a lower
priority than all earlier ones, so it never changes how an earlier word is split.
"""

from __future__ import annotations

import string

from transformers import CLIPTokenizer

from sdplay.mini.dataset import vocabulary

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 16  # longest caption is 11 words + BOS + EOS; the text encoder has as many positions
SUFFIX = "</w>"


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Classic BPE on one word: repeatedly merge the adjacent pair with the best (lowest) rank."""
    pieces = list(word[:-1]) + [word[-1] + SUFFIX]
    while len(pieces) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(pieces, pieces[1:], strict=False))]
        best, i = min(pairs)
        if best == 1 << 30:
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2 :]
    return pieces


def build_vocab_and_merges(words: list[str]) -> tuple[dict[str, int], list[str]]:
    """vocab.json mapping and merges.txt lines that make each of `words` a single token."""
    ranks: dict[tuple[str, str], int] = {}
    tokens: list[str] = [BOS, EOS]
    tokens += list(string.ascii_lowercase) + [c + SUFFIX for c in string.ascii_lowercase]
    for word in words:
        while len(pieces := _bpe(word, ranks)) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(ranks)
            if pair[0] + pair[1] not in tokens:
                tokens.append(pair[0] + pair[1])
    vocab = {tok: i for i, tok in enumerate(tokens)}
    merges = [f"{a} {b}" for (a, b), _ in sorted(ranks.items(), key=lambda kv: kv[1])]
    return vocab, merges


def build_tokenizer(max_length: int = MAX_LENGTH) -> CLIPTokenizer:
    """The mini model's tokenizer: every grammar word is exactly one token."""
    vocab, merges = build_vocab_and_merges(vocabulary())
    pairs = [tuple(m.split(" ")) for m in merges]
    tok = CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=max_length)
    for word in vocabulary():
        ids = tok(word, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise AssertionError(f"word {word!r} is not one token: {ids}")
    return tok
