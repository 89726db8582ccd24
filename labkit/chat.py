"""Talk to the model: a Gradio app with a streamed chat and a quiz the model writes.

- :func:`build_app` makes the app for any (model, tokenizer): a "Chat" tab (streamed replies, history, an
  editable system prompt, sampling controls) and a "Quiz" tab (see :mod:`labkit.quiz`).
- :func:`launch` serves it on 127.0.0.1 only; a public gradio.live link exists only with ``share=True``.
  In a notebook: ``launch(build_app(model, tokenizer), inline=True)``.
- :func:`run_chat` is ``labkit chat --run NAME``: the run's fine-tuned model, served until Ctrl-C.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from labkit.infer import STREAM_TOKEN_TIMEOUT, Sampling, StreamError, stream_chat
from labkit.quiz import LETTERS, QuizError, QuizGenerate, QuizSession, make_quiz, model_generate, quiz_sampling

if TYPE_CHECKING:
    import gradio as gr

    from labkit.config import Config
    from labkit.runs import Run

LOCALHOST = "127.0.0.1"
DEFAULT_SYSTEM = "You are a helpful assistant."
# Chat defaults: light sampling reads more naturally than greedy decoding for a small model.
CHAT_SAMPLING = Sampling(max_new_tokens=256, temperature=0.7, top_p=0.9, min_p=0.0, repetition_penalty=1.1, seed=0)


# ------------------------------------------------------------------ chat logic (no Gradio needed)

def message_text(content: Any) -> str:
    """The text of a chat message; Gradio 6 hands content over as a list of blocks like {"type": "text", ...}."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(block) for block in content)
    return "" if content is None else str(content)


def build_conversation(system: str, history: list[dict], message: str) -> list[dict]:
    """The model's input: the system prompt (if any), the earlier turns as plain text, the new user message."""
    turns = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
    for turn in history:
        if turn.get("role") in ("user", "assistant") and not (turn.get("metadata") or {}).get("title"):
            turns.append({"role": turn["role"], "content": message_text(turn.get("content"))})
    return turns + [{"role": "user", "content": message}]


def chat_turn(model, tokenizer, message: str, history: list[dict], system: str, sampling: Sampling,
              token_timeout: float | None = STREAM_TOKEN_TIMEOUT) -> Iterator[list[dict]]:
    """Yield the whole chat history after each streamed piece of the reply (first with an empty reply).

    A failed or stalled generation raises :class:`labkit.infer.StreamError` after the pieces it made.
    """
    conversation = build_conversation(system, history, message)
    shown = [{"role": t["role"], "content": message_text(t.get("content"))} for t in history]
    shown += [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    yield shown
    for piece in stream_chat(model, tokenizer, conversation, sampling, token_timeout=token_timeout):
        if piece:
            shown[-1] = {"role": "assistant", "content": shown[-1]["content"] + piece}
            yield shown


def sampling_from_controls(temperature: float, top_p: float, min_p: float, repetition_penalty: float,
                           max_new_tokens: float, seed: float) -> Sampling:
    if max_new_tokens is None or int(max_new_tokens) < 1:
        raise ValueError(f"max new tokens is {max_new_tokens}: use 1 or more")
    return Sampling(max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_p=float(top_p),
                    min_p=float(min_p) or None, repetition_penalty=float(repetition_penalty),
                    seed=int(seed or 0))


# ------------------------------------------------------------------ quiz tab logic

def question_markdown(session: QuizSession | None) -> str:
    if session is None:
        return "Write a quiz first."
    question = session.current()
    if question is None:
        return f"**Quiz over:** {session.score} of {len(session.questions)} right."
    number = len(session.answers) + 1
    return f"**Question {number} of {len(session.questions)}**\n\n{question.question}"


def choice_options(session: QuizSession | None) -> list[tuple[str, str]]:
    """Radio options as (label shown, value returned): ("B. Paris", "B")."""
    question = session.current() if session else None
    return [(f"{LETTERS[i]}. {text}", LETTERS[i]) for i, text in enumerate(question.choices)] if question else []


# ------------------------------------------------------------------ the app

def _chat_tab(gr, model, tokenizer, system_prompt: str, sampling: Sampling, token_timeout: float | None) -> None:
    chatbot = gr.Chatbot(label="Chat", height=420, elem_id="labkit-chatbot")
    message = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, elem_id="labkit-message")
    with gr.Row():
        send = gr.Button("Send", variant="primary", elem_id="labkit-send")
        stop = gr.Button("Stop")
        clear = gr.Button("Clear")
    with gr.Accordion("System prompt and sampling", open=False):
        system = gr.Textbox(value=system_prompt, label="System prompt", lines=2)
        temperature = gr.Slider(0.0, 2.0, value=sampling.temperature, step=0.05, label="Temperature (0 = greedy)")
        top_p = gr.Slider(0.05, 1.0, value=sampling.top_p, step=0.05, label="top_p")
        min_p = gr.Slider(0.0, 0.5, value=sampling.min_p or 0.0, step=0.01, label="min_p (0 = off)")
        repetition = gr.Slider(1.0, 2.0, value=sampling.repetition_penalty, step=0.05, label="Repetition penalty")
        max_new = gr.Slider(1, 1024, value=sampling.max_new_tokens, step=1, label="Max new tokens")
        seed = gr.Number(value=sampling.seed, precision=0, label="Seed (same seed and input: same reply)")

    def respond(text, history, system_text, *controls):
        if not text or not text.strip():
            yield history, text
            return
        try:
            settings = sampling_from_controls(*controls)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        try:
            for shown in chat_turn(model, tokenizer, text.strip(), history or [], system_text, settings,
                                   token_timeout):
                yield shown, ""
        except StreamError as err:   # shown in the page; the partial reply stays in the chat
            raise gr.Error(str(err)) from None

    inputs = [message, chatbot, system, temperature, top_p, min_p, repetition, max_new, seed]
    events = [trigger(respond, inputs, [chatbot, message]) for trigger in (message.submit, send.click)]
    stop.click(None, cancels=events)
    clear.click(lambda: ([], ""), None, [chatbot, message], queue=False)


def _quiz_tab(gr, model, tokenizer, quiz_generate: QuizGenerate | None, default_topic: str) -> None:
    session = gr.State(None)
    with gr.Row():
        topic = gr.Textbox(value=default_topic, label="Topic", scale=3)
        count = gr.Slider(1, 10, value=3, step=1, label="Questions")
        retries = gr.Slider(0, 5, value=2, step=1, label="Retries allowed")
    write = gr.Button("Write quiz", variant="primary")
    status = gr.Markdown()
    question = gr.Markdown("Write a quiz first.")
    choice = gr.Radio(choices=[], label="Your answer")
    answer = gr.Button("Answer")
    feedback = gr.Markdown()

    def new_quiz(topic_text, n, max_retries):
        try:
            generate = quiz_generate or model_generate(model, tokenizer, quiz_sampling(int(n)))
            report = make_quiz(generate, topic_text, int(n), int(max_retries))
            quiz = QuizSession(report.questions)
        except QuizError as err:
            return None, f"**No quiz:** {err}", "Write a quiz first.", gr.update(choices=[], value=None), ""
        return quiz, report.summary(), question_markdown(quiz), gr.update(choices=choice_options(quiz), value=None), ""

    def submit_answer(quiz, letter):
        if quiz is None or letter is None:
            return quiz, "Write a quiz and pick an answer first.", question_markdown(quiz), gr.update()
        try:
            result = quiz.answer(letter)
        except QuizError as err:
            return quiz, str(err), question_markdown(quiz), gr.update()
        message = f"{result.message}\n\n{quiz.progress()}"
        return quiz, message, question_markdown(quiz), gr.update(choices=choice_options(quiz), value=None)

    write.click(new_quiz, [topic, count, retries], [session, status, question, choice, feedback])
    answer.click(submit_answer, [session, choice], [session, feedback, question, choice])


def build_app(model, tokenizer, *, title: str = "labkit chat", system_prompt: str = DEFAULT_SYSTEM,
              sampling: Sampling | None = None, quiz_topic: str = "",
              quiz_generate: QuizGenerate | None = None,
              token_timeout: float | None = STREAM_TOKEN_TIMEOUT) -> "gr.Blocks":
    """The Gradio app (Chat and Quiz tabs) for ``model``; ``quiz_generate`` replaces the model as quiz writer.

    ``token_timeout``: seconds the chat waits for each new piece of a reply before it reports a stall.
    """
    import gradio as gr

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}")
        with gr.Tab("Chat"):
            _chat_tab(gr, model, tokenizer, system_prompt, sampling or CHAT_SAMPLING, token_timeout)
        with gr.Tab("Quiz"):
            _quiz_tab(gr, model, tokenizer, quiz_generate, quiz_topic)
    # One generation at a time: the model and torch's global seed are shared by every browser tab.
    app.queue(default_concurrency_limit=1)
    return app


def launch(app: "gr.Blocks", *, share: bool = False, port: int | None = None, inline: bool | None = None,
           block: bool = False, host: str = LOCALHOST, quiet: bool = False) -> str:
    """Serve ``app``; returns its URL (the public one when shared).

    The server listens on ``host`` (127.0.0.1: this machine only). A public link through Gradio's share
    servers is made only when ``share=True`` is passed, never by default (Gradio itself would share on Colab).
    ``block=True`` waits until Ctrl-C (the CLI); otherwise the server runs in the background (notebooks).
    """
    app.launch(server_name=host, server_port=port, share=bool(share), inline=inline, quiet=quiet,
               prevent_thread_lock=not block, ssr_mode=False, mcp_server=False, inbrowser=False)
    return app.share_url or app.local_url


def _load_model(cfg: "Config", run: "Run"):
    """The run's fine-tuned model, or the base model with a note when the run has no adapter yet."""
    from labkit.loadrun import AdapterMissing, load_base, load_tuned

    try:
        return load_tuned(run, cfg)
    except AdapterMissing as err:
        print(f"labkit: {err}. Chatting with the base model {cfg.model.name} instead.")
        return load_base(cfg, run)


def run_chat(cfg: "Config", run: "Run", share: bool = False, port: int | None = None) -> None:
    """``labkit chat --run NAME``: serve the run's model until Ctrl-C."""
    model, tokenizer = _load_model(cfg, run)
    app = build_app(model, tokenizer, title=f"labkit chat: run {run.name} ({cfg.model.name})")
    print(f"labkit: chat with run {run.name!r}; press Ctrl-C to stop")
    launch(app, share=share, port=port, block=True)
