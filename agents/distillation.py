"""The loss of on-policy distillation from a served teacher (issue #28): the generalized
Jensen-Shannon divergence of GKD (Agarwal et al., 2024, eq. 1) between the student's
next-token distribution and the teacher's, on the teacher's top-k tokens at each position.

TRL has the divergence (``GKDTrainer.generalized_jsd_loss``: ``beta`` 0 is the forward KL
of the teacher from the student, 1 the reverse KL, between them the generalized JSD), but
only for two models' full logits in one process. A teacher behind a server (a vLLM engine
on other GPUs, an endpoint) returns its top-k log-probabilities at each position of the
student's sample (vLLM's ``prompt_logprobs``) and nothing else. What is classroom's own
here, where TRL has no piece: both distributions are restricted to the teacher's top-k
tokens at each position, and TRL's divergence is taken on that support, with the rest of each distribution's mass as one more outcome. With k the whole
vocabulary it is TRL's loss exactly; with a small k a lower bound of it. torch is imported
by the trainer's process only.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from classroom.serving.adapters import AdapterFiles, materialize, pack_adapter
from classroom.serving.types import TopLogprobs

if TYPE_CHECKING:
    import torch


class DistillRow(BaseModel):
    """One sample to learn from: the prompt's and the completion's token ids (the
    student's tokenizer, which must be the teacher's) and the teacher's top-k at each
    completion position."""

    model_config = ConfigDict(frozen=True)
    prompt_ids: tuple[int, ...] = Field(min_length=1)
    completion_ids: tuple[int, ...] = Field(min_length=1)
    teacher: TopLogprobs

    @model_validator(mode="after")
    def _teacher_scores_every_position(self) -> DistillRow:
        if len(self.teacher.token_ids) != len(self.completion_ids):
            raise ValueError(
                f"a teacher's scores cover {len(self.teacher.token_ids)} positions of a {len(self.completion_ids)}-token completion"
            )
        return self


def top_k_jsd(
    student_logits: torch.Tensor,
    teacher_ids: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    beta: float = 0.5,
    temperature: float = 1.0,
) -> torch.Tensor:
    """The mean over unmasked positions of the generalized JSD between the student and the
    teacher, each seen as k + 1 outcomes: the teacher's top-k tokens, and the rest.

    ``student_logits`` (batch, positions, vocabulary): the student's logits at each
    completion position. ``teacher_ids`` (batch, positions, k): the teacher's k most
    likely token ids there; ``teacher_logprobs`` (same shape): their log-probabilities
    under the teacher's whole distribution (what vLLM returns), so the rest of its mass is
    known. ``mask`` (batch, positions): True where a position counts. ``beta`` and
    ``temperature`` mean what they mean in TRL's ``GKDConfig``.

    The "rest" outcome is what keeps a student from escaping: mass the student puts on
    tokens outside the teacher's top-k counts against it (renormalising on the top-k
    alone ignored it, and a student trained so learnt to repeat a token the teacher never
    named). Grouping outcomes never increases the divergence, so this is a lower bound of
    the full one, equal to it when k is the whole vocabulary. A temperature other than 1
    needs the teacher's whole distribution (its tail cannot be re-tempered): it is refused
    where the top-k leaves mass out.
    """
    import warnings

    import torch

    with warnings.catch_warnings():  # TRL keeps GKD under trl.experimental and says so on import
        warnings.simplefilter("ignore")
        from trl.experimental.gkd import GKDTrainer

    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"distillation beta must be in [0, 1] (0: forward KL, 1: reverse KL); got {beta}")
    if teacher_ids.shape != teacher_logprobs.shape or teacher_ids.shape[:2] != student_logits.shape[:2]:
        raise ValueError(
            f"teacher top-k {tuple(teacher_ids.shape)} / {tuple(teacher_logprobs.shape)} does not match the student's "
            f"positions {tuple(student_logits.shape[:2])}"
        )
    teacher = teacher_logprobs.to(student_logits.dtype)
    teacher_rest = _rest(teacher)
    if temperature != 1.0:
        if bool((teacher_rest.exp() > 1e-4)[mask.bool()].any()):
            raise ValueError("a temperature other than 1 needs the teacher's whole distribution; its top-k leaves mass out")
        teacher = torch.log_softmax(teacher / temperature, dim=-1)
        teacher_rest = torch.full_like(teacher_rest, _FLOOR)
    student = torch.log_softmax(student_logits / temperature, dim=-1).gather(-1, teacher_ids.long())
    labels = torch.where(mask.bool(), 0, -100)  # TRL masks the positions whose label is -100
    # Both as normalised log-probabilities over k + 1 outcomes: TRL's log-softmax (at
    # temperature 1) leaves them as they are.
    return GKDTrainer.generalized_jsd_loss(
        torch.cat([student, _rest(student)[..., None]], dim=-1),
        torch.cat([teacher, teacher_rest[..., None]], dim=-1),
        labels,
        beta=beta,
        temperature=1.0,
    )


# log of the smallest mass the "rest" outcome takes (0 where the top-k holds everything):
# a log of 0 would make the divergence 0 * inf.
_FLOOR = -46.0


def _rest(top: torch.Tensor) -> torch.Tensor:
    """log(1 - the mass of ``top``'s log-probabilities), per position, floored."""
    import torch

    held = torch.logsumexp(top, dim=-1).clamp(max=0.0)
    # Floored before the log, not after: log(0) would send a NaN back through the gradient.
    return torch.log((-torch.expm1(held)).clamp(min=math.exp(_FLOOR)))


def fit_to_teacher(
    base: Any, rows: Sequence[DistillRow], settings: dict[str, Any], init_adapter: AdapterFiles | None = None
) -> dict[str, Any]:
    """Train a LoRA adapter on ``base`` (a transformers causal LM, left untouched) so its
    next-token distributions at each row's completion positions match the teacher's top-k
    (:func:`top_k_jsd`); the adapter comes back as files.

    ``settings``: the LoRA and optimisation settings of an SFT step (r, alpha, dropout,
    target_modules, epochs, learning_rate, batch_size, seed) and the divergence's ``beta``
    and ``temperature``. A plain loop, not a TRL trainer: TRL's trainers that distil
    (GKD, DistillationTrainer) need the teacher's weights in the process.
    """
    import torch
    from peft import PeftModel, get_peft_model

    from classroom.agents.learners import lora_config  # here: learners imports this module

    if not rows:
        raise ValueError("fit_to_teacher: no samples to learn from")
    started = time.perf_counter()
    torch.manual_seed(settings["seed"])
    model = copy.deepcopy(base)
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, materialize(init_adapter), is_trainable=True)
    else:
        model = get_peft_model(model, lora_config(settings))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings["learning_rate"])
    order = torch.Generator().manual_seed(settings["seed"])
    losses: list[float] = []
    steps = 0
    for _ in range(settings["epochs"]):
        shuffled = torch.randperm(len(rows), generator=order).tolist()
        for start in range(0, len(rows), settings["batch_size"]):
            batch = [rows[i] for i in shuffled[start : start + settings["batch_size"]]]
            loss = _batch_loss(model, batch, beta=settings["beta"], temperature=settings["temperature"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss))
            steps += 1
    scratch = tempfile.mkdtemp(prefix="classroom-distil-")
    try:
        model.save_pretrained(os.path.join(scratch, "adapter"))
        adapter = pack_adapter(os.path.join(scratch, "adapter"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "train_loss": sum(losses) / len(losses),
        "seconds": time.perf_counter() - started,
        "steps": steps,
        "examples": len(rows),
        "adapter_files": adapter,
    }


def divergence(model: Any, rows: Sequence[DistillRow], *, beta: float = 0.5, temperature: float = 1.0) -> float:
    """The mean of :func:`top_k_jsd` over ``rows`` under ``model`` (no gradient): how far
    a student is from its teacher on those samples."""
    import torch

    with torch.no_grad():
        return float(_batch_loss(model, list(rows), beta=beta, temperature=temperature))


def _batch_loss(model: Any, batch: Sequence[DistillRow], *, beta: float, temperature: float) -> torch.Tensor:
    """One padded forward pass; each row's completion positions against its teacher."""
    import torch

    lengths = [len(r.prompt_ids) + len(r.completion_ids) for r in batch]
    width, positions = max(lengths), max(len(r.completion_ids) for r in batch)
    ks = {len(ids) for r in batch for ids in r.teacher.token_ids}
    if len(ks) != 1:  # padding a short top-k would put student mass on tokens the teacher never named
        raise ValueError(f"every position's teacher top-k must be the same size; got sizes {sorted(ks)}")
    [k] = ks
    input_ids = torch.zeros(len(batch), width, dtype=torch.long)
    attention = torch.zeros(len(batch), width, dtype=torch.long)
    # Where each completion token is predicted: the position before it.
    at = torch.zeros(len(batch), positions, dtype=torch.long)
    mask = torch.zeros(len(batch), positions, dtype=torch.bool)
    teacher_ids = torch.zeros(len(batch), positions, k, dtype=torch.long)
    teacher_logprobs = torch.zeros(len(batch), positions, k)  # padded positions are masked out
    for b, row in enumerate(batch):
        ids = [*row.prompt_ids, *row.completion_ids]
        input_ids[b, : len(ids)] = torch.tensor(ids)
        attention[b, : len(ids)] = 1
        n, p = len(row.completion_ids), len(row.prompt_ids)
        at[b, :n] = torch.arange(p - 1, p - 1 + n)
        mask[b, :n] = True
        teacher_ids[b, :n] = torch.tensor(row.teacher.token_ids)
        teacher_logprobs[b, :n] = torch.tensor(row.teacher.logprobs)
    logits = model(input_ids=input_ids, attention_mask=attention).logits
    student = logits[torch.arange(len(batch))[:, None], at]
    return top_k_jsd(student, teacher_ids, teacher_logprobs, mask, beta=beta, temperature=temperature)
