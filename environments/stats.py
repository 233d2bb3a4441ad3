"""Small statistics every loop's summary and every results table uses."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# Two-sided 95% Student-t critical values by degrees of freedom (1..30); beyond, ~1.96.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def t95(dof: int) -> float:
    """The two-sided 95% critical value of Student's t with ``dof`` degrees of freedom:
    the table to 30, then the Cornish-Fisher expansion (within 0.001 of the exact value
    there; 1.96, the normal's, would make a CI of 40 seeds 3% too narrow)."""
    if dof <= len(_T95):
        return _T95[dof - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def mean_ci(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% confidence interval (None for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    return mean, t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def seeds_to_resolve(sd: float, effect: float, *, power: float = 0.8) -> int | None:
    """Pairs (seeds) a paired two-sided 95% t-test needs to find a mean difference of
    ``effect`` with probability ``power``, when per-pair differences spread with standard
    deviation ``sd``; None when no spread was measured (``sd`` 0) or ``effect`` is 0.

    The normal-approximation sample size plus Guenther's (1981) correction for the t
    distribution: n = ((z_0.975 + z_power) sd / effect)^2 + z_0.975^2 / 2, rounded up.
    """
    if sd <= 0 or effect == 0:
        return None
    z = statistics.NormalDist()
    alpha, beta = z.inv_cdf(0.975), z.inv_cdf(power)
    return max(2, math.ceil(((alpha + beta) * sd / effect) ** 2 + alpha**2 / 2))


def resolved(mean: float, ci: float | None) -> bool:
    """Whether a mean ± 95% CI excludes zero (a direction can be stated)."""
    return ci is not None and abs(mean) > ci
