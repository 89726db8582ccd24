"""Talk to the model: a Gradio app with a streamed chat and a quiz the model writes.

- :func:`build_app` makes the app for any (model, tokenizer): a "Chat" tab (streamed replies, history, an
  editable system prompt, sampling controls) and a "Quiz" tab (see :mod:`labkit.infer.quiz`).
- :func:`launch` serves it on 127.0.0.1 only; a public gradio.live link exists only with ``share=True``.
  In a notebook: ``launch(build_app(model, tokenizer), inline=True)``.
- :func:`run_chat` is ``labkit chat --run NAME``: the run's fine-tuned model, served until Ctrl-C.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from labkit.infer.generate import STREAM_TOKEN_TIMEOUT, Sampling, StreamError, stream_chat
from labkit.infer.quiz import LETTERS, QuizError, QuizGenerate, QuizSession, make_quiz, model_generate, quiz_sampling

if TYPE_CHECKING:
    import gradio as gr

    from labkit.infer.chat_compare import Side

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


def shown_history(history: list[dict]) -> list[dict]:
    """The earlier messages as the Chatbot shows them again; tool steps keep their titles (metadata)."""
    return [{"role": t["role"], "content": message_text(t.get("content")),
             **({"metadata": t["metadata"]} if (t.get("metadata") or {}).get("title") else {})} for t in history]


def chat_turn(model, tokenizer, message: str, history: list[dict], system: str, sampling: Sampling,
              token_timeout: float | None = STREAM_TOKEN_TIMEOUT) -> Iterator[list[dict]]:
    """Yield the whole chat history after each streamed piece of the reply (first with an empty reply).

    A failed or stalled generation raises :class:`labkit.infer.StreamError` after the pieces it made.
    """
    conversation = build_conversation(system, history, message)
    shown = shown_history(history) + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    yield shown
    for piece in stream_chat(model, tokenizer, conversation, sampling, token_timeout=token_timeout):
        if piece:
            shown[-1] = {"role": "assistant", "content": shown[-1]["content"] + piece}
            yield shown


def tool_turn(model, tokenizer, message: str, history: list[dict], system: str, sampling: Sampling,
              registry, max_calls: int, generate=None) -> Iterator[list[dict]]:
    """Like :func:`chat_turn`, with tools: each call and result shows as a titled message (labkit.infer.tools)."""
    from labkit.infer.tools.chatview import tool_chat_turn
    from labkit.infer.tools.loop import has_tool_role, model_generate

    conversation = build_conversation(registry.system_prompt(system), history, message)
    shown = shown_history(history) + [{"role": "user", "content": message}]
    generate = generate or model_generate(model, tokenizer, sampling, stream=True)
    yield from tool_chat_turn(generate, registry, conversation, shown, max_calls=int(max_calls),
                              tool_role=has_tool_role(tokenizer))


def tool_registry(names: list[str] | None, docs: str | None, web_search: bool):
    """The registry the Tools panel asks for, or None when no tool is on; a bad folder is a ValueError."""
    from labkit.infer.tools import WebSearch, make_registry

    names = list(names or []) + (["web_search"] if web_search and "web_search" not in (names or []) else [])
    if not names:
        return None
    return make_registry(names, docs=(docs or "").strip() or None, web=WebSearch(enabled=bool(web_search)))


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


# ------------------------------------------------------------------ compare tab (base vs tuned; labkit.infer.chat_compare)

def compare_turn(sides: list["Side"], message: str, histories: list[list[dict]], system: str,
                 sampling: Sampling) -> Iterator[list[list[dict]]]:
    """Yield every column's chat history after each streamed piece (first with empty replies); the sides answer
    one after the other, each with the same prompt, sampling and seed (labkit.infer.chat_compare says why)."""
    shown = [shown_history(h) + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
             for h in histories]
    yield shown
    for column, side in enumerate(sides):
        conversation = build_conversation(system, histories[column], message)
        with side.context():
            for piece in stream_chat(side.model, side.tokenizer, conversation, sampling):
                if piece:
                    reply = shown[column][-1]["content"] + piece
                    shown[column][-1] = {"role": "assistant", "content": reply}
                    yield shown


def compare_tab(gr, sides: list["Side"], system_prompt: str, sampling: Sampling) -> None:
    """The tab's widgets and events (inside a ``gr.Tab``)."""
    gr.Markdown("The same message goes to both models, with the same sampling settings and seed; the answers "
                "stream one after the other.")
    with gr.Row():
        bots = [gr.Chatbot(label=side.label, height=380, elem_id=f"labkit-compare-{i}")
                for i, side in enumerate(sides)]
    message = gr.Textbox(placeholder="Type a message for both models and press Enter", show_label=False,
                         elem_id="labkit-compare-message")
    with gr.Row():
        send = gr.Button("Send to both", variant="primary", elem_id="labkit-compare-send")
        stop = gr.Button("Stop")
        clear = gr.Button("Clear")
    system = gr.Textbox(value=system_prompt, label="System prompt (both models)", lines=1)

    def respond(text, system_text, *histories):
        if not text or not text.strip():
            yield (*histories, text)
            return
        for shown in compare_turn(sides, text.strip(), [h or [] for h in histories], system_text, sampling):
            yield (*shown, "")

    events = [trigger(respond, [message, system, *bots], [*bots, message]) for trigger in (message.submit, send.click)]
    stop.click(None, cancels=events)
    clear.click(lambda: ([],) * len(bots) + ("",), None, [*bots, message], queue=False)


# ------------------------------------------------------------------ the app

def _tools_panel(gr, tools: list[str], docs: str | None, web_search: bool) -> list:
    from labkit.infer.tools import DEFAULT_MAX_CALLS, OFFLINE_TOOLS

    with gr.Accordion("Tools", open=bool(tools or web_search)):
        names = gr.CheckboxGroup(list(OFFLINE_TOOLS), value=[t for t in tools if t in OFFLINE_TOOLS],
                                 label="Tools the model may call", elem_id="labkit-tools")
        folder = gr.Textbox(value=docs or "", label="Documents folder (search_documents searches only here)")
        web = gr.Checkbox(value=web_search, label="Web search (sends the model's queries to the internet)")
        max_calls = gr.Slider(0, 8, value=DEFAULT_MAX_CALLS, step=1, label="Tool calls per turn (at most)")
    return [names, folder, web, max_calls]


def _chat_tab(gr, model, tokenizer, system_prompt: str, sampling: Sampling, tools: dict,
              token_timeout: float | None) -> None:
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
    tool_controls = _tools_panel(gr, list(tools.get("names") or []), tools.get("docs"), tools.get("web_search", False))

    def respond(text, history, system_text, *controls):
        if not text or not text.strip():
            yield history, text
            return
        names, folder, web, max_calls = controls[-4:]
        try:
            settings = sampling_from_controls(*controls[:-4])
            registry = tool_registry(names, folder, web)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        turn = (tool_turn(model, tokenizer, text.strip(), history or [], system_text, settings, registry, max_calls,
                          tools.get("generate")) if registry else
                chat_turn(model, tokenizer, text.strip(), history or [], system_text, settings, token_timeout))
        try:
            for shown in turn:
                yield shown, ""
        except StreamError as err:   # shown in the page; the partial reply stays in the chat
            raise gr.Error(str(err)) from None

    inputs = [message, chatbot, system, temperature, top_p, min_p, repetition, max_new, seed, *tool_controls]
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
              quiz_generate: QuizGenerate | None = None, tools: list[str] | None = None, docs: str | None = None,
              web_search: bool = False, tool_generate=None, model_label: str | None = None,
              compare: list | None = None, token_timeout: float | None = STREAM_TOKEN_TIMEOUT) -> "gr.Blocks":
    """The Gradio app (Chat and Quiz tabs) for ``model``; ``quiz_generate`` replaces the model as quiz writer.

    ``model_label`` names the model on the Chat tab; ``compare`` (a list of :class:`labkit.infer.chat_compare.Side`,
    e.g. from ``run_sides``) adds a Compare tab that sends one message to each and streams the answers side by side.

    ``tools`` (names of labkit.infer.tools built-ins), ``docs`` and ``web_search`` preset the Tools panel;
    ``tool_generate(messages)`` replaces the model in turns with tools (a scripted stand-in in tests).

    ``token_timeout``: seconds the chat waits for each new piece of a reply before it reports a stall.
    """
    import gradio as gr

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}")
        with gr.Tab("Chat"):
            if model_label:
                gr.Markdown(f"Model: **{model_label}**", elem_id="labkit-model")
            _chat_tab(gr, model, tokenizer, system_prompt, sampling or CHAT_SAMPLING,
                      {"names": tools, "docs": docs, "web_search": web_search, "generate": tool_generate},
                      token_timeout)
        if compare:
            with gr.Tab("Compare"):
                compare_tab(gr, compare, system_prompt, sampling or CHAT_SAMPLING)
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
    from labkit.infer.loadrun import AdapterMissing, load_base, load_tuned

    try:
        return load_tuned(run, cfg)
    except AdapterMissing as err:
        print(f"labkit: {err}. Chatting with the base model {cfg.model.name} instead.")
        return load_base(cfg, run)


def run_chat(cfg: "Config", run: "Run", share: bool = False, port: int | None = None, tools: str | None = None,
             docs: str | None = None, web_search: bool = False, compare: bool = False) -> None:
    """``labkit chat --run NAME [--tools calculate,search_documents --docs DIR --web-search] [--compare]``: serve
    until Ctrl-C. ``--compare`` adds the Compare tab (base vs tuned, side by side)."""
    names = [t.strip() for t in (tools or "").split(",") if t.strip()]
    tool_registry(names, docs, web_search)  # an unknown tool or a missing folder fails now, before loading
    if compare:
        from labkit.infer.loadrun import AdapterMissing, _missing_message
        from labkit.infer.modelload import adapter_path

        if adapter_path(run) is None:
            raise AdapterMissing(_missing_message(run) + "; --compare needs a fine-tuned model to compare with")
    model, tokenizer = _load_model(cfg, run)
    tuned = hasattr(model, "disable_adapter")
    label = f"run {run.name} (fine-tuned {cfg.model.name})" if tuned else f"{cfg.model.name} (base, no adapter yet)"
    sides = None
    if compare:
        from labkit.infer.chat_compare import run_sides

        sides = run_sides(model, tokenizer, f"Base: {cfg.model.name}", f"Tuned: run {run.name}")
    app = build_app(model, tokenizer, title=f"labkit chat: run {run.name} ({cfg.model.name})", tools=names,
                    docs=docs, web_search=web_search, model_label=label, compare=sides)
    print(f"labkit: chat with run {run.name!r}; press Ctrl-C to stop")
    launch(app, share=share, port=port, block=True)
