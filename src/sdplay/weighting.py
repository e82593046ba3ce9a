"""Prompt weighting in the syntax people paste from the A1111 web UI, civitai and Deforum files.

    (word:1.3)  weight 1.3          (word)  x1.1      ((word))  x1.21      [word]  /1.1
    \\( \\) \\[ \\]  literal brackets    a BREAK b  b starts a new 77-token chunk
    a cat :1.2 AND a dog :0.8       sub-prompts with weights (compel's conjunction: their
                                    conditionings are weighted and concatenated)

Prompts longer than the text encoder's window are encoded in chunks and concatenated, not truncated.
Only the syntax translation lives here; compel does the embedding maths. A prompt with none of this
syntax that fits in one window returns None: the pipeline encodes it exactly as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import import_extra

log = logging.getLogger("sdplay")

ROUND, SQUARE = 1.1, 1 / 1.1
EXTRA_HINT = "pip install 'sdplay[weighting]'"
_TOKENS = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*\)|\)|]|[^\\()\[\]:]+|:")
_AND = re.compile(r"\bAND\b")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_AND_WEIGHT = re.compile(r"^(.*?)(?:\s*:\s*([+-]?(?:\d+\.?\d*|\.\d+)))?\s*$", re.S)
_SYNTAX = re.compile(r"[()\[\]\\]|\bBREAK\b|\bAND\b")


@dataclass(frozen=True)
class Chunk:
    """Text pieces with their weights that start a new encoder window; `weight` is its sub-prompt's AND weight."""

    pieces: tuple[tuple[str, float], ...]
    weight: float = 1.0


def parse_attention(text: str) -> list[tuple[str, float]]:
    """`(a:1.3) b [c]` -> [("a", 1.3), (" b ", 1.0), ("c", 0.909...)], adjacent equal weights merged.

    A bracket without its partner is kept as literal text, with a warning.
    """
    tokens = _TOKENS.findall(text)
    unmatched = _unmatched_brackets(tokens)
    if unmatched:
        log.warning("unbalanced brackets in the prompt %r: taken as literal text", text)
    pieces: list[list[Any]] = []
    open_at: dict[str, list[int]] = {"(": [], "[": []}
    for index, token in enumerate(tokens):
        if index in unmatched or token in ("\\", ":"):
            pieces.append([token, 1.0])
        elif token.startswith("\\"):
            pieces.append([token[1:], 1.0])
        elif token in open_at:
            open_at[token].append(len(pieces))
        elif token == "]":
            _multiply(pieces, open_at["["].pop(), SQUARE)
        elif token.startswith(":"):
            _multiply(pieces, open_at["("].pop(), float(token[1:-1]))
        elif token == ")":
            _multiply(pieces, open_at["("].pop(), ROUND)
        else:
            pieces.append([token, 1.0])
    merged: list[tuple[str, float]] = []
    for piece, weight in pieces:
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        elif piece:
            merged.append((piece, weight))
    return merged


def _unmatched_brackets(tokens: list[str]) -> set[int]:
    """Indices of brackets that have no partner (a `:1.2)` closes a round bracket)."""
    stacks: dict[str, list[int]] = {"(": [], "[": []}
    unmatched = set()
    for index, token in enumerate(tokens):
        closes_round = token == ")" or (token.startswith(":") and token.endswith(")"))
        opener = "(" if closes_round else "[" if token == "]" else None
        if token in stacks:
            stacks[token].append(index)
        elif opener and stacks[opener]:
            stacks[opener].pop()
        elif opener:
            unmatched.add(index)
    return unmatched | set(stacks["("]) | set(stacks["["])


def _multiply(pieces: list[list[Any]], start: int, factor: float) -> None:
    for piece in pieces[start:]:
        piece[1] *= factor


def parse_prompt(prompt: str) -> list[Chunk]:
    """The whole prompt: AND-separated sub-prompts (each with its `:weight`), each split at BREAK."""
    chunks = []
    for sub_prompt in _AND.split(prompt):
        match = _AND_WEIGHT.match(sub_prompt)
        text, weight = match.group(1).strip(), float(match.group(2)) if match.group(2) else 1.0
        for part in _BREAK.split(text):
            chunks.append(Chunk(tuple(parse_attention(part)), weight))
    return chunks


def needs_weighting(prompt: str, tokenizer: Any, clean: Callable[[str], str] | None = None) -> bool:
    """True for weighting syntax or a prompt longer than one encoder window (which would be cut off)."""
    if _SYNTAX.search(prompt):
        return True
    return len(tokenizer(clean(prompt) if clean else prompt).input_ids) > tokenizer.model_max_length


@dataclass(frozen=True)
class PlainPrompts:
    """Prompts without weighting, given to the pipeline as text: it encodes them exactly as it always has."""

    prompt: str
    negative: str

    def batched(self, count: int) -> dict[str, Any]:
        return {"prompt": [self.prompt] * count, "negative_prompt": [self.negative] * count}


@dataclass(frozen=True)
class WeightedEmbeddings:
    """The pipeline keyword arguments that replace `prompt` and `negative_prompt`."""

    kwargs: dict[str, Any]

    def batched(self, count: int) -> dict[str, Any]:
        """The same embeddings for `count` images of one batch."""
        return {name: tensor.expand(count, *tensor.shape[1:]) for name, tensor in self.kwargs.items()}


def encode_weighted(
    pipe: Any, prompt: str, negative: str = "", clean: Callable[[str], str] | None = None
) -> WeightedEmbeddings | None:
    """Embeddings for a weighted or long prompt pair, or None when both are plain (then encode as usual).

    `clean` is applied to each piece of text (the mini model drops the words it does not know).
    Dream and animate call this for their key point and frame prompts.
    """
    tokenizers = [t for t in (pipe.tokenizer, getattr(pipe, "tokenizer_2", None)) if t is not None]
    if not any(needs_weighting(text, tokenizers[0], clean) for text in (prompt, negative)):
        return None
    compel = import_compel()
    conjunctions = [_conjunction(compel, text, clean) for text in (prompt, negative)]
    plain = [_plain_text(text, clean) for text in (prompt, negative)]
    if len(tokenizers) == 1:
        encoder = compel.Compel(pipe.tokenizer, pipe.text_encoder, truncate_long_prompts=False)
        embeds = _encode(encoder, conjunctions)
        return WeightedEmbeddings({"prompt_embeds": embeds[0], "negative_prompt_embeds": embeds[1]})
    return _encode_sdxl(compel, pipe, conjunctions, plain)


def _encode(encoder: Any, conjunctions: list[Any]) -> list[Any]:
    import torch

    with torch.no_grad():
        embeds = [encoder.build_conditioning_tensor_for_conjunction(c)[0] for c in conjunctions]
        return encoder.pad_conditioning_tensors_to_same_length(embeds)


def _encode_sdxl(compel: Any, pipe: Any, conjunctions: list[Any], plain: list[str]) -> WeightedEmbeddings:
    """SDXL: both text encoders' penultimate states side by side, pooled from the second."""
    import torch

    kind = compel.ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
    first = compel.Compel(pipe.tokenizer, pipe.text_encoder, returned_embeddings_type=kind, truncate_long_prompts=False)
    second = compel.Compel(
        pipe.tokenizer_2, pipe.text_encoder_2, returned_embeddings_type=kind, truncate_long_prompts=False
    )
    left, right = _encode(first, conjunctions), _encode(second, conjunctions)
    with torch.no_grad():
        pooled = [second.conditioning_provider.get_pooled_embeddings([text]) for text in plain]
    prompt_embeds, negative_embeds = (torch.cat([a, b], dim=-1) for a, b in zip(left, right, strict=True))
    return WeightedEmbeddings(
        {
            "prompt_embeds": prompt_embeds,
            "negative_prompt_embeds": negative_embeds,
            "pooled_prompt_embeds": pooled[0],
            "negative_pooled_prompt_embeds": pooled[1],
        }
    )


def _conjunction(compel: Any, prompt: str, clean: Callable[[str], str] | None) -> Any:
    from compel.prompt_parser import Conjunction, FlattenedPrompt, Fragment

    prompts, weights = [], []
    for chunk in parse_prompt(prompt):
        fragments = [Fragment(clean(text) if clean else text, weight) for text, weight in chunk.pieces]
        prompts.append(FlattenedPrompt([f for f in fragments if f.text.strip()] or [Fragment("")]))
        weights.append(chunk.weight)
    return Conjunction(prompts, weights)


def _plain_text(prompt: str, clean: Callable[[str], str] | None) -> str:
    text = " ".join(piece for chunk in parse_prompt(prompt) for piece, _ in chunk.pieces)
    return clean(text) if clean else text


def import_compel() -> Any:
    return import_extra("compel", f"weighted and long prompts need compel: {EXTRA_HINT}")
