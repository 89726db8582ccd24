"""An Ollama ``Modelfile`` beside each GGUF file: ``FROM`` the file, the chat template in Go template syntax, the
end-of-turn ``stop`` tokens and labkit's chat sampling defaults (``ollama create NAME -f Modelfile``).

The template is where fine-tuned models go wrong in Ollama (replies that never stop, wrong role markers), so it is
not guessed from marker strings: each family's Go template (ChatML as SmolLM2 renders it, Llama 3, Gemma, the
families of :mod:`labkit.templates`) is rendered for a set of probe conversations and must give exactly what the
model's Jinja chat template gives. A model whose template matches none is refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.export.errors import ExportError
from labkit.export.gotemplate import render

MODELFILE = "Modelfile"
SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# Every family's template keeps the role of the last message in $role and opens the assistant's turn after a
# message that is not the assistant's (what add_generation_prompt=True does in Jinja).
CHATML_GO = """{{- $role := "" }}
{{- range $i, $m := .Messages }}
{{- if and (eq $i 0) (ne $m.Role "system") }}<|im_start|>system
""" + SMOLLM_SYSTEM + """<|im_end|>
{{ end }}<|im_start|>{{ $m.Role }}
{{ $m.Content }}<|im_end|>
{{ $role = $m.Role }}
{{- end }}
{{- if ne $role "assistant" }}<|im_start|>assistant
{{ end }}"""

LLAMA3_GO = """{{- $role := "" }}
{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- $role = .Role }}
{{- end }}
{{- if ne $role "assistant" }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}"""

# Gemma has no system role: the first system message opens the first user turn; every other role is "user".
GEMMA_GO = """{{- $role := "" }}{{- $prefix := "" }}
{{- range $i, $m := .Messages }}
{{- if and (eq $i 0) (eq $m.Role "system") }}{{ $prefix = $m.Content }}
{{- else if eq $m.Role "assistant" }}<start_of_turn>model
{{ $m.Content }}<end_of_turn>
{{ else }}<start_of_turn>user
{{ if $prefix }}{{ $prefix }}

{{ end }}{{ $m.Content }}<end_of_turn>
{{ $prefix = "" }}
{{- end }}
{{- $role = $m.Role }}
{{- end }}
{{- if ne $role "assistant" }}<start_of_turn>model
{{ end }}"""


@dataclass(frozen=True)
class Family:
    name: str
    template: str
    stop: tuple[str, ...]
    bos: str = ""   # the Jinja template writes it; llama.cpp adds it itself (the GGUF's add_bos_token), Ollama too


FAMILIES = (
    Family("chatml", CHATML_GO, ("<|im_end|>", "<|im_start|>")),
    Family("llama3", LLAMA3_GO, ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"), "<|begin_of_text|>"),
    Family("gemma", GEMMA_GO, ("<end_of_turn>", "<start_of_turn>"), "<bos>"),
)

PROBES = (
    [{"role": "user", "content": "Hi there"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
     {"role": "user", "content": "Another one?\nJust one word."}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello"},
     {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a fact."}],
)


def go_render(template: str, messages: list[dict]) -> str:
    """What Ollama renders for ``messages`` (its ``.Messages`` carry ``Role`` and ``Content``)."""
    return render(template, {"Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]})


def jinja_render(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def match_family(tokenizer) -> Family:
    """The family whose Go template renders every probe exactly as the tokenizer's chat template does."""
    if not getattr(tokenizer, "chat_template", None):
        raise ExportError("the model has no chat template: no Ollama Modelfile can be written for it")
    wanted = [jinja_render(tokenizer, probe) for probe in PROBES]
    for family in FAMILIES:
        if all(text.startswith(family.bos) and text[len(family.bos):] == go_render(family.template, probe)
               for text, probe in zip(wanted, PROBES)):
            return family
    names = ", ".join(f.name for f in FAMILIES)
    raise ExportError(f"the model's chat template renders like none of labkit's families ({names}), so labkit "
                      "cannot translate it into an Ollama TEMPLATE: write the Modelfile's TEMPLATE by hand "
                      "(https://github.com/ollama/ollama/blob/main/docs/template.md), or train with "
                      f"data.chat_template set to one of {names}")


def _quoted(text: str) -> str:
    return '"""' + text + '"""' if "\n" in text or '"' in text else f'"{text}"'


def modelfile_text(gguf_name: str, family: Family, sampling=None) -> str:
    """The Modelfile for ``gguf_name`` (a file in the same folder)."""
    from labkit.infer.chat import CHAT_SAMPLING

    sampling = sampling or CHAT_SAMPLING
    lines = [f"# Written by labkit: ollama create NAME -f {MODELFILE}, then ollama run NAME",
             f"# Chat template family: {family.name} (checked against the model's Jinja template)",
             f"FROM ./{gguf_name}", f'TEMPLATE """{family.template}"""']
    lines += [f"PARAMETER stop {_quoted(token)}" for token in family.stop]
    lines += [f"PARAMETER temperature {sampling.temperature:g}", f"PARAMETER top_p {sampling.top_p:g}",
              f"PARAMETER repeat_penalty {sampling.repetition_penalty:g}"]
    if sampling.min_p:
        lines.append(f"PARAMETER min_p {sampling.min_p:g}")
    return "\n".join(lines) + "\n"


PREFERRED = ("q4_k_m", "q8_0", "f16")  # what plain ``Modelfile`` points at: the smallest file that was written


def write_modelfiles(gguf_paths: list[Path], tokenizer) -> dict:
    """``Modelfile.<format>`` beside the GGUF files (they share one folder), plus ``Modelfile`` for the preferred
    format; returns ``{"family": ..., "files": [...]}``, or ``{"skipped": reason}`` for an unknown template."""
    from labkit.runs import atomic_write_text

    try:
        family = match_family(tokenizer)
    except ExportError as err:
        return {"skipped": str(err)}
    by_format = {path.stem.removeprefix("model-"): Path(path) for path in gguf_paths}
    files = []
    for fmt, path in by_format.items():
        files.append(path.with_name(f"{MODELFILE}.{fmt}"))
        atomic_write_text(files[-1], modelfile_text(path.name, family))
    preferred = next((f for f in PREFERRED if f in by_format), next(iter(by_format), None))
    if preferred:
        files.append(by_format[preferred].with_name(MODELFILE))
        atomic_write_text(files[-1], modelfile_text(by_format[preferred].name, family))
    return {"family": family.name, "files": [str(f) for f in files]}
