"""A correct Hugging Face tokenizer for a SentencePiece-BPE GGUF (Gemma 3), built from the GGUF's own vocabulary.

transformers' GGUF path turns Gemma's vocabulary into a *Unigram* model, but Gemma's scores are BPE merge ranks
(``score = -rank``), not log-probabilities: Unigram then prefers many short frequent pieces and splits every
word into letters and pairs ("▁world" -> "▁w" "or" "ld"). Here the same vocabulary becomes what Google's
tokenizer really is, a BPE model with byte fallback, whose merges transformers derives from the scores
(``convert_slow_tokenizer.generate_merges``, the helper its SentencePiece converters use), and the GGUF's control
tokens (``<start_of_turn>``, ``<end_of_turn>``, ...) become special tokens.
"""

from __future__ import annotations

from pathlib import Path

# SentencePiece piece types as stored in ``tokenizer.ggml.token_type`` (llama.cpp's LLAMA_TOKEN_TYPE_*).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "▁"


class GGUFTokenizerError(ValueError):
    """The GGUF's tokenizer metadata is not a SentencePiece-BPE vocabulary this module can convert."""


def read_sentencepiece_vocab(gguf: Path) -> dict:
    """The tokenizer fields of a GGUF: tokens, scores, token types, special ids and the bos/space flags."""
    from gguf import GGUFReader

    fields = GGUFReader(gguf).fields

    def value(key: str, default=None):
        return fields[key].contents() if key in fields else default

    if value("tokenizer.ggml.model") != "llama" or "tokenizer.ggml.scores" not in fields:
        raise GGUFTokenizerError(f"{gguf}: tokenizer.ggml.model is {value('tokenizer.ggml.model')!r}; only "
                                 f"SentencePiece vocabularies ('llama', with scores) are supported")
    return {"tokens": value("tokenizer.ggml.tokens"), "scores": value("tokenizer.ggml.scores"),
            "types": value("tokenizer.ggml.token_type"),
            "bos": value("tokenizer.ggml.bos_token_id"), "eos": value("tokenizer.ggml.eos_token_id"),
            "unk": value("tokenizer.ggml.unknown_token_id"), "pad": value("tokenizer.ggml.padding_token_id"),
            "add_bos": bool(value("tokenizer.ggml.add_bos_token", True)),
            "add_space_prefix": bool(value("tokenizer.ggml.add_space_prefix", False))}


def _sentencepiece_pieces(tokens: list[str], types: list[int]) -> list[str]:
    """The pieces as SentencePiece spells them: llama.cpp writes Gemma's whitespace pieces ("▁▁", ...) with real
    spaces, which the space-to-▁ normaliser would never let match."""
    return [SPACE * len(t) if t and not t.strip(" ") and kind == USER_DEFINED else t
            for t, kind in zip(tokens, types)]


def build_gemma_tokenizer(gguf: Path):
    """A ``GemmaTokenizer`` (BPE, byte fallback, no prefix space) equivalent to the GGUF's SentencePiece model."""
    from tokenizers import AddedToken
    from transformers import GemmaTokenizer
    from transformers.convert_slow_tokenizer import generate_merges

    meta = read_sentencepiece_vocab(gguf)
    if meta["add_space_prefix"]:
        raise GGUFTokenizerError(f"{gguf}: add_space_prefix=true is not Gemma's convention; not supported")
    pieces, types = _sentencepiece_pieces(meta["tokens"], meta["types"]), meta["types"]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    if len(vocab) != len(pieces):
        raise GGUFTokenizerError(f"{gguf}: the vocabulary has duplicate pieces")
    # Control, user-defined and byte pieces are never the result of a merge.
    atomic = {p for p, kind in zip(pieces, types) if kind != NORMAL}
    merges = generate_merges(vocab, list(zip(pieces, meta["scores"])), skip_tokens=atomic)
    tokenizer = GemmaTokenizer(
        vocab=vocab, merges=merges, add_bos_token=meta["add_bos"], add_eos_token=False,
        bos_token=pieces[meta["bos"]], eos_token=pieces[meta["eos"]], unk_token=pieces[meta["unk"]],
        pad_token=pieces[meta["pad"]], clean_up_tokenization_spaces=False)
    tokenizer.add_tokens([_added_token(AddedToken, p, kind) for p, kind in zip(pieces, types)
                          if kind in (CONTROL, USER_DEFINED)])
    return tokenizer


def _added_token(added_token_cls, piece: str, kind: int):
    """SentencePiece matches control and user-defined pieces whole, before BPE: added tokens in HF terms.
    Whitespace runs ("▁▁") are matched after the space-to-▁ normaliser, everything else on the raw text."""
    whitespace = set(piece) == {SPACE}
    return added_token_cls(piece, special=kind == CONTROL, normalized=whitespace, lstrip=False, rstrip=False)
