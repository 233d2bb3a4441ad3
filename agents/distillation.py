"""The loss of on-policy distillation from a served teacher (issue #28): the generalized
Jensen-Shannon divergence of GKD (Agarwal et al., 2024, eq. 1) between the student's
next-token distribution and the teacher's, on the teacher's top-k tokens at each position.

TRL has the divergence (``GKDTrainer.generalized_jsd_loss``: ``beta`` 0 is the forward KL
of the teacher from the student, 1 the reverse KL, between them the generalized JSD), but
only for two models' full logits in one process. A teacher behind a server (a vLLM engine
on other GPUs, an endpoint) returns its top-k log-probabilities at each position of the
student's sample (vLLM's ``prompt_logprobs``) and nothing else. What is classroom's own
here, where TRL has no piece: both distributions are restricted to the teacher's top-k
tokens at each position and renormalised there, and TRL's divergence is taken on that
support. With k the whole vocabulary it is TRL's loss exactly; with a small k it is the
divergence of the distributions' heads (the sparse-logit distillation of verl and rLLM's
served teachers). torch is imported by the trainer's process only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def top_k_jsd(
    student_logits: torch.Tensor,
    teacher_ids: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    beta: float = 0.5,
    temperature: float = 1.0,
) -> torch.Tensor:
    """The mean over unmasked positions of the generalized JSD on the teacher's top-k.

    ``student_logits`` (batch, positions, vocabulary): the student's logits at each
    completion position. ``teacher_ids`` (batch, positions, k): the teacher's k most
    likely token ids there; ``teacher_logprobs`` (same shape): their log-probabilities
    (any normalisation: they are renormalised over the k). ``mask`` (batch, positions):
    True where a position counts (a sampled completion token, not padding). ``beta`` and
    ``temperature`` mean what they mean in TRL's ``GKDConfig``.
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
    student_on_support = student_logits.gather(-1, teacher_ids.long())
    labels = torch.where(mask.bool(), 0, -100)  # TRL masks the positions whose label is -100
    return GKDTrainer.generalized_jsd_loss(
        student_on_support, teacher_logprobs.to(student_logits.dtype), labels, beta=beta, temperature=temperature
    )
