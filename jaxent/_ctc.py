"""Connectionist temporal classification (CTC): a softmax per frame, marginalised over alignments.

The loss is ``-log p(labels | frames)``, the sum over every alignment of the frames to the
labels with blanks, computed by the forward (alpha) recursion in log space over the
``2S + 1`` states of the blank-extended label sequence. The derivative is analytic, a
``jax.custom_jvp`` rule whose tangent is ``-Σ γ · d log p`` with the posterior occupancies
``γ`` from the forward and backward (beta) recursions: forward and reverse mode, and no
autodiff through the recursion at first order. Nothing of the size of the logits is
stored besides the input and its gradient: the recursions run over the ``[T, B, S + 1]``
log-probabilities of the labels and the blank, gathered up front (the lattice).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field

_NEG = -jnp.inf


def _logsumexp3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """``log(e^a + e^b + e^c)`` elementwise; -inf when all three are -inf, with finite gradients (no -inf - -inf)."""
    m = jax.lax.stop_gradient(jnp.maximum(jnp.maximum(a, b), c))
    # The shift is exact (any m works); an all -inf triple gets shift 0 and sum 0. NaN propagates.
    some = m != _NEG
    ms = jnp.where(some, m, 0)
    s = jnp.exp(a - ms) + jnp.exp(b - ms) + jnp.exp(c - ms)
    # Double where: log(0) is never taken, so no inf * 0 reaches a gradient.
    return jnp.where(some, ms + jnp.log(jnp.where(some, s, 1)), _NEG)


def _shift_right(a: jax.Array, k: int) -> jax.Array:
    """``a[..., s - k]`` along the last axis, -inf for ``s < k``."""
    return jnp.concatenate([jnp.full(a.shape[:-1] + (k,), _NEG, a.dtype), a[..., :-k]], axis=-1)


def _shift_left(a: jax.Array, k: int, fill: Any = _NEG) -> jax.Array:
    """``a[..., s + k]`` along the last axis, ``fill`` (-inf) past the end."""
    return jnp.concatenate([a[..., k:], jnp.full(a.shape[:-1] + (k,), fill, a.dtype)], axis=-1)


def _states(blank: jax.Array, labels: jax.Array) -> jax.Array:
    """The log-probability of each lattice state ``[B, 2S + 1]``: blank, l_1, blank, ..., l_S, blank."""
    b, s = labels.shape
    pairs = jnp.stack([jnp.broadcast_to(blank[:, None], (b, s)), labels], axis=-1).reshape(b, 2 * s)
    return jnp.concatenate([pairs, blank[:, None]], axis=-1)


def _alpha_step(skip: jax.Array, alpha: jax.Array, frame: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
    blank, labels, valid = frame
    # alpha_t(s) = log p_t(z_s) + log(alpha_{t-1}(s) + alpha_{t-1}(s-1) + [skip_s] alpha_{t-1}(s-2)).
    new = _states(blank, labels) + _logsumexp3(
        alpha, _shift_right(alpha, 1), jnp.where(skip, _shift_right(alpha, 2), _NEG)
    )
    # A padding frame emits nothing: the alignment waits.
    return jnp.where(valid[:, None], new, alpha)


def _start(like: jax.Array) -> jax.Array:
    """The state before the first frame: the leading blank (``s = 0``) with probability 1."""
    first = jax.lax.broadcasted_iota(jnp.int32, like.shape, like.ndim - 1) == 0
    return jnp.where(first, jnp.zeros_like(like), _NEG)


def _log_likelihood(alpha: jax.Array, final: jax.Array) -> jax.Array:
    """``log Σ_{s final} alpha_T(s)`` ``[B]``: the last label or the trailing blank."""
    last_blank, last_label = (jnp.max(jnp.where(final[..., i], alpha, _NEG), axis=-1) for i in range(2))
    return _logsumexp3(last_blank, last_label, jnp.full_like(last_blank, _NEG))


def _lattice_shape(labels: jax.Array) -> jax.Array:
    return jnp.zeros(labels.shape[1:2] + (2 * labels.shape[2] + 1,), labels.dtype)


def _nll(blank: jax.Array, labels: jax.Array, valid: jax.Array, skip: jax.Array, final: jax.Array) -> jax.Array:
    """``-log p(labels)`` ``[B]`` from time-major lattice log-probabilities (the forward recursion only).

    ``blank`` ``[T, B]`` and ``labels`` ``[T, B, S]`` are the log-probabilities of the blank
    and of each label at each frame; ``valid`` ``[T, B]`` marks the frames that count;
    ``skip`` ``[B, 2S + 1]`` the label states reachable from two states back (a label that
    differs from the previous one); ``final`` ``[B, 2S + 1, 2]`` the two accepting states.
    """
    init = _backend_vary(_start(_lattice_shape(labels)), labels)
    alpha, _ = jax.lax.scan(lambda a, f: (_alpha_step(skip, a, f), None), init, (blank, labels, valid))
    return -_log_likelihood(alpha, final)


def _backend_vary(init: jax.Array, ref: jax.Array) -> jax.Array:
    # A scan carry inside shard_map must vary over the mesh axes its inputs vary over.
    return _reduction.vary_like(init, ref)


def _occupancies(blank, labels, valid, skip, final):
    """(``-log p``, the posterior occupancies of the blank ``[T, B]``, of each label ``[T, B, S]``, and their sum).

    ``γ_t(s) = alpha_t(s) + c_{t+1}(s) - log p``, with ``c_{t+1}(s)`` the log-probability
    of the frames after ``t`` given state ``s`` at frame ``t`` (the backward recursion).
    An impossible target (``p = 0``) has zero occupancies (its loss is +inf).
    """
    init = _backend_vary(_start(_lattice_shape(labels)), labels)

    def forward(a, f):
        a = _alpha_step(skip, a, f)
        return a, a

    alpha_t, alphas = jax.lax.scan(forward, init, (blank, labels, valid))
    log_p = _log_likelihood(alpha_t, final)
    possible = log_p != _NEG
    safe_log_p = jnp.where(possible, log_p, 0)
    skip_next = _shift_left(skip, 2, False)  # may state s jump to s + 2?

    def backward(c, f):
        b, lab, v, a = f
        # γ_t(s) = alpha_t(s) + c_{t+1}(s) - log p; zero at padding frames and for an impossible target.
        gamma = jnp.where((v & possible)[:, None], a + c - safe_log_p[:, None], _NEG)
        occ = jnp.exp(gamma)
        e = _states(b, lab) + c
        # c_t(s) = log(e_t(s) + e_t(s+1) + [skip_{s+2}] e_t(s+2)), e_t = log p_t(z) + c_{t+1}.
        new = _logsumexp3(e, _shift_left(e, 1), jnp.where(skip_next, _shift_left(e, 2), _NEG))
        c = jnp.where(v[:, None], new, c)
        return c, (jnp.sum(occ[:, 0::2], axis=-1), occ[:, 1::2], jnp.sum(occ, axis=-1))

    end = jnp.where(final[..., 0] | final[..., 1], 0, _NEG).astype(alpha_t.dtype)
    _, (occ_blank, occ_labels, total) = jax.lax.scan(backward, end, (blank, labels, valid, alphas), reverse=True)
    return -log_p, occ_blank, occ_labels, total


def _lattice(blank: int, x: jax.Array, labels: jax.Array, lse: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Time-major log-probabilities of the blank ``[T, B]`` and of each label ``[T, B, S]``, in float32 or wider."""
    ct = _checks.compute_dtype(x.dtype)
    # A gather per sequence (indices [B, S], not [B, T, S]); half precision is upcast after it.
    lp_labels = jax.vmap(_take_labels, out_axes=1)(x, labels).astype(ct)
    lp_blank = x[:, :, blank].T.astype(ct)
    if lse is None:
        return lp_blank, lp_labels
    # log_softmax at the lattice only: log p_t(c) = x_t(c) - logsumexp(x_t).
    return lp_blank - lse.T, lp_labels - lse.T[..., None]


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _ctc(blank: int, logits: bool, x, labels, valid, skip, final, slots, class_slots) -> jax.Array:
    """``-log p(labels | x)`` ``[B]`` from batch-major ``x`` ``[B, T, C]`` (logits or log-probabilities).

    ``slots`` ``[B, S]`` numbers each label state's class among the sequence's distinct
    labels, ``class_slots`` ``[B, C]`` each class's number (S for the blank, S + 1 for a
    class that is not in the target).
    """
    lse = _log_sum_exp(x, valid) if logits else None
    return _nll(*_lattice(blank, x, labels, lse), valid.T, skip, final)


@functools.partial(_ctc.defjvp, symbolic_zeros=True)
def _ctc_jvp(blank, logits, primals, tangents):
    # d(-log p) = Σ_{t,c} g_t(c) dx_t(c) with g = -γ (log-probabilities) or p - γ (logits): the
    # analytic gradient, not autodiff through the recursions. The occupancies γ come from the
    # forward and backward recursions, once, from the primals; the tangent map is linear in dx
    # and recomputes g elementwise from x (reverse mode saves the [B, T, S + 2] occupancies, not
    # an array of x's size, and writes the gradient in one pass, in float32 before rounding).
    # A second derivative differentiates the occupancies by autodiff through the recursions.
    x, labels, valid, skip, final, slots, class_slots = primals
    lse = _log_sum_exp(x, valid) if logits else None
    nll, occ_blank, occ_labels, total = _occupancies(*_lattice(blank, x, labels, lse), valid.T, skip, final)
    dx = tangents[0]
    if isinstance(dx, SymbolicZero):
        return nll, jnp.zeros_like(nll)
    s = labels.shape[1]

    def merged(occ, slot, occ_b):
        # Occupancy per distinct label [T, S + 2]: a repeated label's states add up; slot S is the blank.
        return jnp.zeros((occ.shape[0], s + 2), occ.dtype).at[:, slot].add(occ).at[:, s].add(occ_b)

    compact = jax.vmap(merged, in_axes=(1, 0, 1))(occ_labels, slots, occ_blank)
    # Σ_c γ_t(c) [B, T]: 1 at a frame that counts, 0 at padding and for an impossible target.
    total = None if lse is None else total.T
    return nll, _backend.recomputed(_tangent)(x, lse, total, compact, class_slots, valid, dx)


def _tangent(x, lse, total, compact, class_slots, valid, dx):
    """``Σ_{t,c} g_t(c) dx_t(c)`` ``[B]``, with ``g`` the gradient of each sequence's loss in ``x``."""
    ct = compact.dtype
    # γ_t(c): the occupancy of class c, read from its slot (slot S + 1, never written, is 0).
    index = jnp.broadcast_to(class_slots[:, None, :], x.shape)
    g = -jnp.take_along_axis(compact, index, axis=2, mode="promise_in_bounds")
    if lse is not None:
        xv = jnp.where(valid[..., None], x, 0).astype(ct)
        g = g + jnp.exp(xv - lse[..., None]) * total[..., None]
    return jnp.sum(g * dx.astype(ct), axis=(1, 2))


# --------------------------------------------------------------------------------------
# Validation and the public function.

_INPUTS = ("logits", "log_probs")


def _integer_array(fn: str, name: str, value: Any, shape: tuple[int, ...], what: str) -> jax.Array:
    a = _checks.as_array(fn, name, value)
    if not jnp.issubdtype(a.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: {name} must be an integer array, got dtype {a.dtype}; cast it with {name}.astype(jnp.int32)."
        )
    if a.shape != shape:
        raise ValueError(f"{fn}: {name} has shape {a.shape}, expected {shape} ({what}).")
    # int32: lengths and labels meet int32 positions (a 64-bit length would not fit T anyway).
    return a.astype(jnp.int32)


def _padding_array(fn: str, name: str, value: Any, shape: tuple[int, ...], what: str) -> jax.Array:
    """A padding indicator (1 = padding, optax's convention) as a boolean ``True`` = padding."""
    a = _checks.as_array(fn, name, value)
    if not (jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == jnp.bool_):
        raise TypeError(f"{fn}: {name} must be a real or boolean array (1 = padding), got dtype {a.dtype}.")
    if a.shape != shape:
        raise ValueError(f"{fn}: {name} has shape {a.shape}, expected {shape} ({what}, 1 marks padding).")
    return a if a.dtype == jnp.bool_ else a >= 0.5


def _check_concrete_lengths(fn: str, name: str, lengths: jax.Array, high: int, what: str) -> None:
    v = _checks.concrete(lengths)
    if v is not None and v.size and (v.min() < 0 or v.max() > high):
        bad = v.min() if v.min() < 0 else v.max()
        raise ValueError(f"{fn}: {name} contains {bad.item()}, outside [0, {high}]; {what}.")


def _dense_targets(fn: str, targets: jax.Array, lengths: jax.Array, cap: int) -> jax.Array:
    """Concatenated 1-D targets (PyTorch's second form) as padded ``[B, S]``.

    ``S`` is the longest target when the lengths are concrete; under ``jit`` it is
    ``min(len(targets), cap)`` with ``cap = T``: a longer target cannot align with T frames.
    """
    v = _checks.concrete(lengths)
    width = int(v.max()) if v is not None and v.size else min(targets.shape[0], cap)
    width = max(width, 1)
    starts = jnp.cumsum(lengths) - lengths
    positions = jnp.arange(width, dtype=jnp.int32)[None, :]
    idx = starts[:, None] + positions
    inside = positions < lengths[:, None]
    taken = jnp.take(targets, jnp.clip(idx, 0, max(targets.shape[0] - 1, 0)), mode="clip") if targets.size else idx
    return jnp.where(inside, taken, 0).astype(targets.dtype)


def ctc_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
    *,
    logit_paddings: ArrayLike | None = None,
    label_paddings: ArrayLike | None = None,
    blank: int = 0,
    inputs: Literal["logits", "log_probs"] = "logits",
    zero_infinity: bool = False,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Connectionist temporal classification loss (PyTorch ``F.ctc_loss``, optax ``ctc_loss``).

    For each sequence, with frame log-probabilities :math:`\log p_t` (``log_softmax`` of
    the logits over the class axis) and the labels :math:`y` of length :math:`L`:

    .. math::
        \ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_{t=1}^{T'} p_t(\pi_t)

    over the alignments :math:`\pi` of the :math:`T'` valid frames that collapse to
    :math:`y` once repeats are merged and blanks removed. ``reduction``: ``"none"`` (the
    losses ``[B]``), ``"sum"``, or ``"mean"``: PyTorch's, the mean over the kept sequences
    of :math:`\ell / \max(L, 1)` (each loss divided by its target length first; ``"sum"``
    and ``"none"`` do not divide). An empty mean is 0.0, not NaN.

    Two calling conventions, which may be mixed (one per argument):

    - PyTorch's lengths: ``input_lengths`` ``[B]`` (the first frames of each sequence
      count), ``target_lengths`` ``[B]``, with ``targets`` padded ``[B, S]`` or
      concatenated 1-D (the labels of every sequence one after the other, of length
      ``sum(target_lengths)``);
    - optax's paddings: ``logit_paddings`` ``[B, T]`` and ``label_paddings`` ``[B, S]``,
      1 (or True) marks padding. A padding frame anywhere is skipped, as in optax; label
      padding must be trailing: the target length is the number of non-padding labels.

    Without either, every frame and every label counts.

    Args:
      logits: ``[B, T, C]`` floating scores per frame, batch-major as in optax (PyTorch's
        time-major ``(T, B, C)`` is ``jnp.swapaxes(log_probs, 0, 1)``), or ``[T, C]`` for
        one sequence. bf16/f16 are computed in float32.
      targets: integer labels ``[B, S]`` padded (or ``[S]`` for one sequence), or 1-D
        concatenated with ``target_lengths``. No label may equal ``blank``.
      input_lengths: optional integer ``[B]`` in ``[0, T]``.
      target_lengths: optional integer ``[B]`` in ``[0, S]``.
      logit_paddings: optional ``[B, T]`` padding indicators (instead of ``input_lengths``).
      label_paddings: optional ``[B, S]`` padding indicators (instead of ``target_lengths``).
      blank: static; the blank class, in ``[0, C)``.
      inputs: static; ``"logits"`` (default): ``log_softmax`` is applied over the classes;
        ``"log_probs"``: the inputs are log-probabilities already (PyTorch's ``log_probs``),
        used as they are. For normalised log-probabilities both give the same loss, and the
        same gradient through the caller's ``log_softmax``.
      zero_infinity: static; an impossible target (+inf loss) gives 0 instead, as in PyTorch.
      where: optional boolean ``[B]``; False drops a sequence (0 in ``"none"``, zero gradient,
        not counted by the mean).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 inputs): ``[B]`` (``()`` for one sequence)
      with ``reduction="none"``, else a scalar. The gradient comes back in the input dtype.

    Notes:
      The gradient is analytic: :math:`\partial\ell/\partial \log p_t(c) = -\gamma_t(c)`, the
      posterior probability that frame :math:`t` emits :math:`c`, from the forward and
      backward recursions (for logits: :math:`p_t(c) - \gamma_t(c)` on the valid frames, 0
      on padding). It is a ``jax.custom_jvp`` rule, so forward and reverse mode work; the
      second derivative (``jax.hessian``) differentiates the occupancies through the
      recursions by autodiff. Memory is the ``[B, T, S + 1]`` lattice and the
      ``[B, T, 2S + 1]`` forward variables, never another array of the logits' size.

      Decisions where PyTorch and optax differ or are silent: an impossible target (longer
      than its frames, or repeats without room for a blank) has loss +inf and a zero
      gradient (PyTorch's is NaN; optax's ``log_epsilon`` gives a finite ~1e5); a label
      outside ``[0, C)`` or equal to ``blank`` within the target length, or a length out of
      range under ``jit``, makes that sequence's loss NaN (concrete lengths out of range are a
      ``ValueError``). PyTorch's own backward returns ``p - γ`` even for ``log_probs`` inputs,
      the gradient through a ``log_softmax``; with ``inputs="log_probs"`` this function
      returns the exact partial ``-γ`` (they agree once composed with the ``log_softmax``).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> logits = jnp.zeros((1, 3, 3))  # uniform over {blank, a, b} at each of 3 frames
      >>> round(float(jaxent.ctc_loss(logits, jnp.array([[1, 2]]), reduction="sum")), 4)  # 5 alignments of "ab"
      1.6864
      >>> jaxent.ctc_loss(logits, jnp.array([[1, 1]]), jnp.array([2]), jnp.array([2]), reduction="none")
      Array([inf], dtype=float32)

    References:
      Graves, Fernández, Gomez, Schmidhuber, "Connectionist temporal classification:
      labelling unsegmented sequence data with recurrent neural networks", ICML 2006.
    """
    fn = "ctc_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "zero_infinity", zero_infinity)
    if not isinstance(inputs, str) or inputs not in _INPUTS:
        raise ValueError(
            f"{fn}: inputs must be 'logits' or 'log_probs', got {inputs!r}; 'log_probs' means the inputs are "
            "log-probabilities already (no log_softmax)."
        )
    x = _checks.as_array(fn, "logits", logits)
    _checks.check_floating(fn, "logits", x)
    if x.ndim not in (2, 3):
        raise ValueError(
            f"{fn}: logits has shape {x.shape}, expected [B, T, C] (batch, frames, classes) or [T, C] for one "
            "sequence; PyTorch's time-major (T, B, C) input is jnp.swapaxes(log_probs, 0, 1)."
        )
    single = x.ndim == 2
    y = _checks.target_array(fn, targets)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: targets must be integer labels, got dtype {y.dtype}; cast with targets.astype(jnp.int32)."
        )
    if y.dtype.itemsize > 4:  # int32, with a 64-bit label beyond int32 kept out of range (not wrapped into it)
        y = jnp.clip(y, np.iinfo(np.int32).min, np.iinfo(np.int32).max)
    y = y.astype(jnp.int32)
    if single:
        x = x[None]
        if y.ndim != 1:
            raise ValueError(f"{fn}: targets has shape {y.shape} but logits is [T, C] (one sequence); pass [S] labels.")
        y = y[None]
        input_lengths, target_lengths, where = (
            None if a is None else jnp.asarray(a)[None] for a in (input_lengths, target_lengths, where)
        )
        logit_paddings, label_paddings = (
            None if a is None else jnp.asarray(a)[None] for a in (logit_paddings, label_paddings)
        )
    b, t, c = x.shape
    if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)) or not 0 <= blank < c:
        raise ValueError(f"{fn}: blank must be a Python int in [0, {c}) (the number of classes), got {blank!r}.")
    blank = int(blank)
    if input_lengths is not None and logit_paddings is not None:
        raise ValueError(f"{fn}: pass input_lengths or logit_paddings, not both.")
    if target_lengths is not None and label_paddings is not None:
        raise ValueError(f"{fn}: pass target_lengths or label_paddings, not both.")

    # The frames that count, [B, T].
    if input_lengths is not None:
        lengths_in = _integer_array(fn, "input_lengths", input_lengths, (b,), "one length per sequence")
        _check_concrete_lengths(fn, "input_lengths", lengths_in, t, f"a sequence has at most T = {t} frames")
        frames = jnp.arange(t, dtype=jnp.int32)[None, :] < lengths_in[:, None]
        bad_lengths = (lengths_in < 0) | (lengths_in > t)
    elif logit_paddings is not None:
        frames = ~_padding_array(fn, "logit_paddings", logit_paddings, (b, t), "one indicator per frame")
        bad_lengths = jnp.zeros((b,), bool)
    else:
        frames = jnp.ones((b, t), bool)
        bad_lengths = jnp.zeros((b,), bool)

    # The labels [B, S] and their lengths [B].
    if y.ndim == 1 and not single:
        if target_lengths is None:
            raise ValueError(
                f"{fn}: 1-D targets are the concatenated labels of every sequence and need target_lengths; pass "
                "target_lengths [B], or padded targets [B, S]."
            )
        lengths_out = _integer_array(fn, "target_lengths", target_lengths, (b,), "one length per sequence")
        _check_concrete_lengths(
            fn, "target_lengths", lengths_out, y.shape[0], f"the concatenated targets hold {y.shape[0]} labels"
        )
        v = _checks.concrete(lengths_out)
        if v is not None and v.sum() != y.shape[0]:
            raise ValueError(
                f"{fn}: 1-D targets hold {y.shape[0]} labels but target_lengths sum to {v.sum()}; they must be equal."
            )
        y = _dense_targets(fn, y, lengths_out, t)
        bad_lengths = bad_lengths | (lengths_out < 0)
    elif y.ndim == 2 and y.shape[0] == b:
        s = y.shape[1]
        if target_lengths is not None:
            lengths_out = _integer_array(fn, "target_lengths", target_lengths, (b,), "one length per sequence")
            _check_concrete_lengths(fn, "target_lengths", lengths_out, s, f"the padded targets hold S = {s} labels")
            bad_lengths = bad_lengths | (lengths_out < 0) | (lengths_out > s)
        elif label_paddings is not None:
            pads = _padding_array(fn, "label_paddings", label_paddings, (b, s), "one indicator per label")
            lengths_out = s - jnp.sum(pads, axis=1, dtype=jnp.int32)
        else:
            lengths_out = jnp.full((b,), s, jnp.int32)
    else:
        raise ValueError(
            f"{fn}: targets has shape {y.shape} but logits has shape {tuple(x.shape)}; pass padded targets "
            f"[B, S] = [{b}, S], or 1-D concatenated targets with target_lengths."
        )

    kept = None
    if where is not None:
        kept = _checks.as_array(fn, "where", where)
        if kept.dtype != jnp.bool_ or kept.shape != (b,):
            raise ValueError(
                f"{fn}: where must be a boolean mask of shape ({b},) (one entry per sequence), got "
                f"{kept.dtype}{kept.shape}; pass e.g. where=(input_lengths > 0)."
            )

    out = _ctc_batch(
        x,
        y,
        frames,
        lengths_out,
        bad_lengths,
        kept,
        blank=blank,
        logits=inputs == "logits",
        zero_infinity=zero_infinity,
        reduction=reduction,
    )
    return out[0] if single and reduction == "none" else out


def _ctc_batch(x, y, frames, lengths_out, bad_lengths, kept, *, blank, logits, zero_infinity, reduction):
    """:func:`ctc_loss` of validated arrays: ``x`` ``[B, T, C]``, padded labels ``y`` ``[B, S]``, the
    frames that count ``[B, T]``, target lengths and bad lengths ``[B]``, the kept sequences (or None).

    Not jitted on its own: a ``jax.jit`` boundary here would turn the backend choice of
    :func:`_backend.recomputed` into a run-time ``cond`` in reverse mode.
    """
    fn = "ctc_loss"
    b, _, c = x.shape
    ct = _checks.compute_dtype(x.dtype)
    s = y.shape[1]
    # A padding frame emits nothing; a dropped sequence has no frames and no labels (its loss is 0).
    valid = frames if kept is None else frames & kept[:, None]
    # A target wider than the padded labels (only under jit, longer than T) cannot align: +inf below.
    lengths = jnp.minimum(lengths_out, s + 1) if kept is None else jnp.where(kept, jnp.minimum(lengths_out, s + 1), 0)
    # Labels within the target length must be classes other than the blank; the rest are padding.
    inside = jnp.arange(s, dtype=jnp.int32)[None, :] < lengths[:, None]
    bad_label = inside & ((y < 0) | (y >= c) | (y == blank))
    labels = jnp.where(inside & ~bad_label, y, blank)
    # Log-probabilities of the blank and of each label at every frame: the lattice, gathered up front.
    # The lattice's structure: a label state may be entered from two states back when it
    # differs from the previous label; the accepting states are the last label and the trailing blank.
    states = jnp.arange(2 * s + 1, dtype=jnp.int32)[None, :]
    differs = jnp.concatenate([jnp.zeros((b, 1), bool), labels[:, 1:] != labels[:, :-1]], axis=1)
    skip = jnp.concatenate(
        [jnp.stack([jnp.zeros_like(differs), differs], -1).reshape(b, 2 * s), differs[:, :1] & False], 1
    )
    final = jnp.stack([states == 2 * lengths[:, None], states == 2 * lengths[:, None] - 1], -1)
    # Each label's number among the sequence's distinct labels (a repeat shares its first one's),
    # the blank's is S; padding labels are blanks.
    rows = jnp.arange(b, dtype=jnp.int32)[:, None]
    positions = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32)[None, :], (b, s))
    class_slots = jnp.full((b, c), s + 1, jnp.int32).at[rows, labels].set(positions).at[:, blank].set(s)
    slots = jnp.take_along_axis(class_slots, labels, axis=1)
    nll = _ctc(blank, logits, x, labels, valid, skip, final, slots, class_slots)
    if zero_infinity:
        nll = jnp.where(nll == jnp.inf, 0, nll)
    invalid = jnp.any(bad_label, axis=1) | bad_lengths
    if kept is not None:
        invalid = invalid & kept
    # A bad label or length poisons its sequence (and any mean) with NaN, never a wrong number.
    nll = jnp.where(invalid, jnp.nan, nll)
    message = (
        f"{fn}: targets contain the label {{}}, outside [0, {c}) or equal to blank={blank} "
        "(or a length is out of range)."
    )
    nll = _checks.attach_check(nll, ~jnp.any(invalid), message, _checks.offending_value(y, bad_label))
    if reduction == "mean":
        per = nll / jnp.maximum(lengths_out, 1).astype(ct)
        out = _reduction.reduce_kept(per, kept, "mean")
    else:
        out = _reduction.reduce_kept(nll, kept, reduction)
    return out


def _take_labels(x: jax.Array, labels: jax.Array) -> jax.Array:
    """``x[:, labels]``: the log-probabilities ``[T, S]`` of one sequence's labels (in range)."""
    return x[:, labels]


def _log_sum_exp(x: jax.Array, valid: jax.Array) -> jax.Array:
    """``log Σ_c exp(x_c)`` per frame ``[B, T]`` in float32 or wider; 0 at padding frames (whose values may be NaN)."""
    ct = _checks.compute_dtype(x.dtype)
    xv = jnp.where(valid[..., None], x, 0)
    m = _backend.row_max(jax.lax.stop_gradient(xv)).astype(ct)
    # A floor on the shift keeps an all -inf frame at exp(-inf - floor) = 0 (no NaN).
    shift = jnp.maximum(m, jnp.finfo(ct).min)
    (total,), (count,) = _backend.row_sums((jnp.exp(xv.astype(ct) - shift[..., None]),), (xv > -jnp.inf,))
    # An all -inf frame is impossible: log 0 = -inf is kept out of x - lse by a log-sum of 0 there.
    return jnp.where(count > 0, shift + jnp.log(jnp.where(count > 0, total, 1)), 0)


@loss_object
class CTCLoss(LossObject):
    """:func:`ctc_loss` as a frozen dataclass pytree: ``CTCLoss(...)(logits, targets, input_lengths, target_lengths)``.

    The paddings convention passes ``logit_paddings=`` and ``label_paddings=`` to the call.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> loss = jaxent.CTCLoss(reduction="sum")
      >>> round(float(loss(jnp.zeros((1, 3, 3)), jnp.array([[1, 2]]))), 4)
      1.6864
    """

    function: ClassVar = staticmethod(ctc_loss)
    blank: int = static_field(default=0)
    inputs: Literal["logits", "log_probs"] = static_field(default="logits")
    zero_infinity: bool = static_field(default=False)
    reduction: _reduction.Reduction = static_field(default="mean")

    def __call__(self, *arrays: ArrayLike, where: ArrayLike | None = None, **paddings: ArrayLike) -> jax.Array:
        return ctc_loss(
            *arrays,
            where=where,
            blank=self.blank,
            inputs=self.inputs,
            zero_infinity=self.zero_infinity,
            reduction=self.reduction,
            **paddings,
        )
