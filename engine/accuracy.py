"""Accuracy assessment and area estimation of a classified map from a reference sample.

The estimators are those of Olofsson, Foody, Herold, Stehman, Woodcock and Wulder (2014),
"Good practices for estimating area and assessing accuracy of land change", Remote Sensing of
Environment 148, 42-57 (doi:10.1016/j.rse.2014.02.015), section 4.2 (equations 2-11), for a
**stratified random sample whose strata are the map classes** (for a simple random or a
systematic sample they are the post-stratified estimators, as the paper notes). Notation:
``n_ij`` sample counts (row i = map class, column j = reference class), ``n_i.`` row totals,
``W_i = A_m,i / A_tot`` the mapped area share of map class ``i``.

- area proportions (eq. 4): ``p_ij = W_i n_ij / n_i.``
- overall accuracy (eq. 1) ``O = sum_j p_jj``, user's ``U_i = p_ii / p_i.`` (eq. 2),
  producer's ``P_j = p_jj / p_.j`` (eq. 3)
- variances: eq. 5 (O), 6 (U_i), 7 (P_j); area proportion of reference class ``k``
  ``p_.k = sum_i W_i n_ik / n_i.`` with ``S(p_.k)`` (eq. 10), area ``A_k = A_tot p_.k`` and
  ``S(A_k) = A_tot S(p_.k)`` (eq. 11)
- confidence intervals ``estimate +- z S`` with ``z = 1.96`` for 95 %.

Pure numpy. No QGIS, no onnxruntime.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import InputError

#: Normal quantile of a two-sided 95 % interval, rounded as Olofsson et al. (2014) use it.
Z95 = 1.96


@dataclass
class Assessment:
    """The estimates of one assessment (K classes; arrays indexed like ``classes``).

    Attributes:
        classes: class labels (ids or names) in matrix order.
        counts: int [K, K] sample counts, rows = map class, columns = reference class.
        mapped_area: float [K] mapped area per class (the caller's unit: pixels, m2, ha).
        weights: float [K] ``W_i``, the mapped area shares.
        proportions: float [K, K] ``p_ij``, the error matrix in area proportions.
        overall, overall_ci: overall accuracy and the half-width of its interval.
        users, users_ci, producers, producers_ci: float [K] (NaN where undefined: a class
            never mapped, or never in the reference).
        area_proportion, area_proportion_se: float [K] ``p_.k`` and ``S(p_.k)``.
        area, area_ci: float [K] estimated area per class and the half-width of its
            interval, in the unit of ``mapped_area``.
        z: the normal quantile used for the intervals.
    """

    classes: list
    counts: np.ndarray
    mapped_area: np.ndarray
    weights: np.ndarray
    proportions: np.ndarray
    overall: float
    overall_ci: float
    users: np.ndarray
    users_ci: np.ndarray
    producers: np.ndarray
    producers_ci: np.ndarray
    area_proportion: np.ndarray
    area_proportion_se: np.ndarray
    area: np.ndarray
    area_ci: np.ndarray
    z: float = Z95

    @property
    def sample_size(self) -> int:
        return int(self.counts.sum())

    def rows(self) -> list[dict]:
        """One dict per class (for tables): the estimates with plain Python numbers."""
        out = []
        for i, c in enumerate(self.classes):
            out.append({
                "class": c, "mapped_area": float(self.mapped_area[i]),
                "mapped_share": float(self.weights[i]),
                "n_map": int(self.counts[i].sum()), "n_reference": int(self.counts[:, i].sum()),
                "users": _num(self.users[i]), "users_ci": _num(self.users_ci[i]),
                "producers": _num(self.producers[i]), "producers_ci": _num(self.producers_ci[i]),
                "area_proportion": float(self.area_proportion[i]),
                "area_proportion_se": float(self.area_proportion_se[i]),
                "area": float(self.area[i]), "area_ci": float(self.area_ci[i]),
            })
        return out


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def error_matrix(map_labels: Sequence, reference_labels: Sequence, classes: Sequence) -> np.ndarray:
    """int [K, K] counts of (map class, reference class) pairs of a sample.

    Raises:
        InputError: a label that is not in ``classes`` (named).
    """
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    counts = np.zeros((k, k), dtype=np.int64)
    for m, r in zip(map_labels, reference_labels):
        for label, what in ((m, "map"), (r, "reference")):
            if label not in index:
                raise InputError(f"{what} class {label!r} of a sample point is not one of the "
                                 f"classes {list(classes)}")
        counts[index[m], index[r]] += 1
    return counts


def assess(counts, mapped_area, classes: Sequence | None = None, z: float = Z95) -> Assessment:
    """Stratified estimates of accuracy and area (Olofsson et al. 2014, section 4.2).

    Args:
        counts: [K, K] sample counts, rows = map class (stratum), columns = reference class.
        mapped_area: [K] area mapped as each class (pixels or any area unit; the area
            estimates come back in the same unit).
        classes: K labels (default 0..K-1).
        z: normal quantile of the intervals (1.96: 95 %).

    Returns:
        :class:`Assessment`.

    Raises:
        InputError: shapes disagree; negative counts or areas; no sample; a mapped class
            (area > 0) with fewer than 2 sample points (its variance is undefined: eq. 5-7
            divide by ``n_i. - 1``), named; sample points in a class with no mapped area.
    """
    n = np.asarray(counts, dtype=np.float64)
    area = np.asarray(mapped_area, dtype=np.float64)
    if n.ndim != 2 or n.shape[0] != n.shape[1]:
        raise InputError(f"error matrix must be square, got shape {n.shape}")
    k = n.shape[0]
    classes = list(classes) if classes is not None else list(range(k))
    if area.shape != (k,) or len(classes) != k:
        raise InputError(f"{k} classes in the error matrix but {area.shape[0] if area.ndim else 0}"
                         f" mapped areas and {len(classes)} class labels")
    if (n < 0).any() or (area < 0).any():
        raise InputError("sample counts and mapped areas must not be negative")
    if n.sum() == 0:
        raise InputError("no sample point falls on a classified pixel: nothing to assess")
    total = area.sum()
    if total <= 0:
        raise InputError("the map has no classified pixel (mapped area 0)")
    n_i = n.sum(axis=1)
    for i in range(k):
        if area[i] > 0 and n_i[i] < 2:
            raise InputError(f"map class {classes[i]!r} covers {area[i]:g} pixels (or area "
                             f"units) of the map but has {int(n_i[i])} sample point(s): at "
                             "least 2 per mapped class are needed; add points in that class "
                             "(stratified estimation, Olofsson et al. 2014 eq. 5-7)")
        if area[i] == 0 and n_i[i] > 0:
            raise InputError(f"{int(n_i[i])} sample point(s) fall in map class {classes[i]!r}, "
                             "which has no mapped area")
    w = area / total
    sampled = n_i > 0
    safe_n = np.where(sampled, n_i, 1.0)
    q = n / safe_n[:, None]                                   # n_ij / n_i.
    p = w[:, None] * q                                         # eq. 4
    p_row, p_col = p.sum(axis=1), p.sum(axis=0)
    diag = np.diag(p)
    overall = float(diag.sum())
    users = np.where(p_row > 0, diag / np.where(p_row > 0, p_row, 1.0), np.nan)
    producers = np.where(p_col > 0, diag / np.where(p_col > 0, p_col, 1.0), np.nan)
    dof = np.where(n_i > 1, n_i - 1.0, 1.0)                   # n_i. - 1 (classes with n>1)
    u_diag = np.diag(q)
    var_users = np.where(sampled, u_diag * (1 - u_diag) / dof, np.nan)          # eq. 6
    var_overall = float(np.sum(np.where(sampled, w ** 2 * u_diag * (1 - u_diag) / dof, 0.0)))  # eq. 5
    # eq. 7 with estimated totals N_.j proportional to p_.j (the common factor cancels)
    var_prod = np.full(k, np.nan)
    for j in range(k):
        if p_col[j] <= 0:
            continue
        first = w[j] ** 2 * (1 - producers[j]) ** 2 * u_diag[j] * (1 - u_diag[j]) / dof[j]
        others = sum(w[i] ** 2 * q[i, j] * (1 - q[i, j]) / dof[i]
                     for i in range(k) if i != j and sampled[i])
        var_prod[j] = (first + producers[j] ** 2 * others) / p_col[j] ** 2
    var_area = np.sum(np.where(sampled[:, None], (w ** 2)[:, None] * q * (1 - q) / dof[:, None],
                               0.0), axis=0)                                      # eq. 10
    se_prop = np.sqrt(var_area)
    return Assessment(
        classes=classes, counts=n.astype(np.int64), mapped_area=area, weights=w, proportions=p,
        overall=overall, overall_ci=z * float(np.sqrt(var_overall)),
        users=users, users_ci=z * np.sqrt(var_users), producers=producers,
        producers_ci=z * np.sqrt(var_prod), area_proportion=p_col, area_proportion_se=se_prop,
        area=total * p_col, area_ci=z * total * se_prop, z=z)
