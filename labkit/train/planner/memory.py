"""Memory parts of a training run, in bytes: weights, LoRA, gradients, optimizer states, activations, loss.

Every part counts tensors, not fitted curves. What each count holds, and where labkit's code decides it:

- weights: 2 bytes a parameter in bf16 / fp16, 4 in fp32; 4-bit nf4 with double quantisation is 0.5 byte plus
  one 8-bit absmax per 64 weights and one fp32 per 256 absmax (bitsandbytes) for the decoder's linear layers,
  while embeddings, head and norms stay 16-bit under Unsloth and become fp32 under transformers
  (``peft.prepare_model_for_kbit_training`` upcasts every non-quantised weight, labkit.loading).
- LoRA: PEFT keeps adapter weights in fp32 (4 bytes), their gradients too; AdamW adds two fp32 states (8 bytes),
  8-bit AdamW two int8 states (2 bytes).
- activations, per token of a micro-batch and per decoder layer, what autograd keeps for a LoRA layer whose base
  is frozen (frozen weights keep no input): the two norms' inputs and outputs (4 x hidden), q, k, v after RoPE,
  the attention output and its reshaped copy (3 x q_dim + 2 x kv_dim), and the MLP's gate, up, SiLU(gate) and
  product (4 x intermediate). Attention without FlashAttention-style kernels (the CPU's math path) also keeps
  the score and probability matrices (2 x heads x sequence). The backward of one layer needs gradients of about
  2 x intermediate + 2 x hidden more. Gradient checkpointing keeps one hidden vector a layer and recomputes one
  layer at a time; Unsloth's variant moves those vectors to pinned host memory (counted in RAM).
- loss: the full logits path (the model's own loss) holds the logits, their fp32 log-softmax and its
  gradient (10 bytes a logit from a 16-bit head, 12 from an fp32 one); on the CPU labkit projects only the
  positions that carry loss (``labkit.train.head``), so only those tokens' logits; TRL's fused head (labkit on CUDA with
  transformers) works on 4096 x 32768 fp32 tiles plus the gathered hidden states and their gradient; Unsloth's
  fused loss keeps about three hidden-sized buffers a token.
- evaluation (``labkit.train.evaluate_loss``, before and after training, on every device): the logits of the
  trained tokens of train.batch_size rows (``labkit.train.head.summed_trained_loss``) and their fp32 log-softmax.
- the Trainer's evaluation every train.eval_steps asks for the loss only (``prediction_loss_only``, labkit.train.
  trainer), so it keeps no logits and, on the CPU, takes the trained-positions head: the evaluation above covers it.
  (Before 2026-12-05 it kept every validation token's logits: +0.92 GiB RSS measured on 24 cpu-demo rows.)
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.train.planner.specs import ModelShape

NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
TRL_TILE_BYTES = 4096 * 32768 * 4        # trl.kernels.chunked_logprob: TOKEN_CHUNK_SIZE x chunk_size, fp32
# Optimizer state bytes per trained parameter, by transformers' ``optim`` name (train.optim).
OPTIMIZER_BYTES = {"adamw_torch": 8, "adamw_torch_fused": 8, "adamw_hf": 8, "adamw": 8, "adamw_apex_fused": 8,
                   "adamw_8bit": 2, "adamw_bnb_8bit": 2, "paged_adamw_8bit": 2, "paged_adamw_32bit": 8,
                   "adafactor": 4, "sgd": 0, "lion_32bit": 4, "lion_8bit": 1, "paged_lion_8bit": 1}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Setup:
    """What labkit would do with a config on a device (derived in labkit.train.planner.setup_for)."""

    device: str              # "cuda" or "cpu"
    backend: str             # "unsloth" or "transformers"
    dtype: str               # float32 / bfloat16 / float16
    four_bit: bool
    loss: str                # "fused_unsloth", "fused_trl", "trained_positions" (CPU) or "full"
    checkpointing: bool
    offload: bool            # Unsloth's checkpointing: layer inputs in pinned host memory
    flash_attention: bool    # no sequence x sequence matrices (CUDA SDPA / Unsloth); False on the CPU
    micro_batch: int
    accum: int
    seq: int
    eval_batch: int
    eval_len: int
    lora_params: int
    lora_dropout: float
    lora_targets: tuple[str, ...]
    optim: str
    trained_share: float = 1.0     # share of a training row's tokens that carry loss
    eval_trained_share: float = 1.0   # the same for validation rows (labkit.train.evaluate_loss)

    @property
    def act_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def residual_bytes(self) -> int:
        """fp32 norm weights (QLoRA under transformers) promote the residual stream and norms to fp32."""
        return 4 if self.four_bit and self.backend == "transformers" else self.act_bytes

    @property
    def logit_bytes(self) -> int:
        return 4 if self.dtype == "float32" or (self.four_bit and self.backend == "transformers") else 2

    @property
    def tokens(self) -> int:
        return self.micro_batch * self.seq


def weights_bytes(shape: ModelShape, s: Setup) -> float:
    if not s.four_bit:
        return shape.total_params * s.act_bytes
    rest = shape.total_params - shape.layer_linear_params
    return shape.layer_linear_params * NF4_BYTES + rest * (4 if s.backend == "transformers" else 2)


def optimizer_bytes(lora_params: int, optim: str) -> float:
    return lora_params * OPTIMIZER_BYTES.get(optim, 8)


def layer_saved_bytes(shape: ModelShape, s: Setup, tokens: int, seq: int | None = None) -> float:
    """What one decoder layer keeps for its backward (see the module docstring); ``seq``: row length."""
    values = 3 * shape.q_dim + 2 * shape.kv_dim + 4 * shape.intermediate
    attention = 0 if s.flash_attention else 2 * shape.heads * (seq or s.seq)
    dropout = 0
    if s.lora_dropout > 0:  # each adapted module keeps its own dropped-out copy of its input
        dropout = sum(shape.linear_shapes()[name][0] for name in s.lora_targets)
    return tokens * ((values + attention + dropout) * s.act_bytes + 4 * shape.hidden * s.residual_bytes)


def backward_transient_bytes(shape: ModelShape, s: Setup, tokens: int) -> float:
    return tokens * (2 * shape.intermediate * s.act_bytes + 2 * shape.hidden * s.residual_bytes)


def activation_parts(shape: ModelShape, s: Setup) -> dict[str, float]:
    """GPU (or CPU) activation memory of one micro-batch, and the host memory Unsloth's offload pins."""
    t = s.tokens
    layer, transient = layer_saved_bytes(shape, s, t), backward_transient_bytes(shape, s, t)
    kept = shape.layers * t * shape.hidden * s.residual_bytes
    if s.checkpointing and s.offload:
        return {"checkpoints": 0.0, "recomputed_layer": layer + transient, "offloaded_to_host": kept}
    if s.checkpointing:
        return {"checkpoints": kept, "recomputed_layer": layer + transient, "offloaded_to_host": 0.0}
    return {"all_layers": shape.layers * layer + transient, "offloaded_to_host": 0.0}


def loss_bytes(shape: ModelShape, s: Setup) -> float:
    t = s.tokens
    if s.loss == "full":
        return t * shape.vocab * (s.logit_bytes + 8)
    if s.loss == "trained_positions":
        return t * s.trained_share * shape.vocab * (s.logit_bytes + 8)
    if s.loss == "fused_trl":
        return min(t, 4096) * TRL_TILE_BYTES / 4096 + 2 * t * shape.hidden * s.residual_bytes
    return 3 * t * shape.hidden * s.act_bytes


def dequant_bytes(shape: ModelShape, s: Setup) -> float:
    """bitsandbytes de-quantises one 4-bit weight at a time into the compute dtype."""
    return max(a * b for a, b in shape.linear_shapes().values()) * s.act_bytes if s.four_bit else 0.0


def training_parts(shape: ModelShape, s: Setup) -> dict[str, float]:
    """Peak device memory of a training step, by part (bytes); their sum is the peak."""
    acts = activation_parts(shape, s)
    parts = {"weights": weights_bytes(shape, s), "lora_weights": s.lora_params * 4.0,
             "gradients": s.lora_params * 4.0, "optimizer_states": optimizer_bytes(s.lora_params, s.optim),
             **{f"activations_{k}": v for k, v in acts.items() if k != "offloaded_to_host"},
             "logits_and_loss": loss_bytes(shape, s)}
    if s.four_bit:
        parts["dequantised_weight"] = dequant_bytes(shape, s)
    return parts


def evaluation_parts(shape: ModelShape, s: Setup) -> dict[str, float]:
    """Peak of ``labkit.train.evaluate_loss`` (no gradients): weights, adapter, one layer, the trained tokens'
    logits."""
    t = s.eval_batch * s.eval_len
    one_layer = layer_saved_bytes(shape, s, t, seq=s.eval_len)
    return {"weights": weights_bytes(shape, s), "lora_weights": s.lora_params * 4.0, "one_layer": one_layer,
            "logits_and_loss": t * s.eval_trained_share * shape.vocab * (s.logit_bytes + 8)}
