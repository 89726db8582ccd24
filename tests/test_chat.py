"""The chat app without a browser: conversation building, streaming turns, binding and sharing, the CLI entry."""

from __future__ import annotations

import socket

import pytest

from labkit.infer.generate import Sampling

FAST = Sampling(max_new_tokens=12, temperature=0.8, seed=3)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_message_text_reads_gradio_content_blocks():
    from labkit.infer.chat import message_text

    assert message_text("hi") == "hi"
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"
    assert message_text(None) == ""


def test_conversation_has_system_history_and_new_message():
    from labkit.infer.chat import build_conversation

    history = [{"role": "user", "content": [{"type": "text", "text": "hi"}], "metadata": None},
               {"role": "assistant", "content": "hello", "metadata": None},
               {"role": "assistant", "content": "thinking...", "metadata": {"title": "tool"}}]
    conversation = build_conversation("  Be brief. ", history, "how are you?")
    assert conversation == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "how are you?"}]
    assert build_conversation("", [], "x") == [{"role": "user", "content": "x"}]


def test_chat_turn_streams_into_the_history(tiny_model, smol_tokenizer, one_thread):
    from labkit.infer.chat import chat_turn

    updates = [[dict(m) for m in shown] for shown in
               chat_turn(tiny_model, smol_tokenizer, "hello", [{"role": "user", "content": "x"},
                                                              {"role": "assistant", "content": "y"}], "", FAST)]
    assert updates[0][-2:] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": ""}]
    assert len(updates) > 2 and updates[-1][-1]["content"].strip()
    assert all(len(u) == 4 for u in updates)
    lengths = [len(u[-1]["content"]) for u in updates]
    assert lengths == sorted(lengths)         # the reply only grows


def test_sampling_controls_map_to_sampling():
    from labkit.infer.chat import sampling_from_controls

    s = sampling_from_controls(0.5, 0.9, 0.0, 1.2, 64.0, 7.0)
    assert (s.temperature, s.top_p, s.min_p, s.repetition_penalty, s.max_new_tokens, s.seed) == (0.5, 0.9, None,
                                                                                                 1.2, 64, 7)
    with pytest.raises(ValueError, match="max new tokens"):
        sampling_from_controls(0.5, 0.9, 0.0, 1.2, 0, 7)


# ------------------------------------------------------------------ binding and sharing

def test_app_listens_on_localhost_only_by_default(tiny_model, smol_tokenizer):
    import psutil

    from labkit.infer.chat import build_app, launch

    app = build_app(tiny_model, smol_tokenizer, sampling=FAST)
    port = free_port()
    try:
        url = launch(app, port=port, quiet=True)
        assert url.startswith(f"http://127.0.0.1:{port}")
        assert app.share_url is None and not app.share
        listening = [c.laddr.ip for c in psutil.Process().net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert listening == ["127.0.0.1"]
    finally:
        app.close()


def test_public_share_only_when_asked(tiny_model, smol_tokenizer, monkeypatch):
    from labkit.infer.chat import build_app, launch

    monkeypatch.setenv("GRADIO_SHARE", "True")           # an environment default must not share either
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    app = build_app(tiny_model, smol_tokenizer, sampling=FAST)
    calls = []

    def fake_launch(**kwargs):                           # the real one would contact Gradio's share servers
        calls.append(kwargs)
        app.local_url, app.share_url = "http://127.0.0.1:1/", "https://x.gradio.live" if kwargs["share"] else None

    monkeypatch.setattr(app, "launch", fake_launch)
    assert launch(app) == "http://127.0.0.1:1/"
    assert launch(app, share=True) == "https://x.gradio.live"
    assert [(c["share"], c["server_name"]) for c in calls] == [(False, "127.0.0.1"), (True, "127.0.0.1")]


def test_cli_chat_serves_the_run_model_and_blocks(monkeypatch, capsys):
    import labkit.infer.chat as chat
    from labkit.cli import main

    served = {}
    monkeypatch.setattr(chat, "launch", lambda app, **kw: served.update(app=app, **kw) or "http://127.0.0.1:1/")
    assert main(["chat", "--run", "chatdemo", "--set", "model.name=tiny-random-llama"]) == 0
    assert served["block"] is True and served["share"] is False
    out = capsys.readouterr().out
    assert "no adapter yet" in out and "Chatting with the base model tiny-random-llama" in out
    assert main(["chat", "--run", "chatdemo", "--set", "model.name=tiny-random-llama", "--share", "--port", "7999"]) == 0
    assert served["share"] is True and served["port"] == 7999


def test_run_chat_loads_the_runs_adapter_and_streams_with_it(tiny_model, smol_tokenizer, monkeypatch, one_thread):
    from peft import LoraConfig, PeftModel, get_peft_model

    import labkit.infer.chat as chat
    from labkit.config import load_config
    from labkit.runs import Run

    cfg = load_config(overrides=["model.name=tiny-random-llama"])
    run = Run.open("tuned", cfg)
    lora = get_peft_model(tiny_model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(run.path("adapter"))
    smol_tokenizer.save_pretrained(run.path("adapter"))
    built = {}
    monkeypatch.setattr(chat, "build_app", lambda model, tokenizer, **kw: built.update(model=model, tok=tokenizer))
    monkeypatch.setattr(chat, "launch", lambda app, **kw: "http://127.0.0.1:1/")
    chat.run_chat(cfg, run)
    assert isinstance(built["model"], PeftModel)
    *_, last = chat.chat_turn(built["model"], built["tok"], "hi", [], "", FAST)
    assert last[-1]["role"] == "assistant" and last[-1]["content"].strip()
