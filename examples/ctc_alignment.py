"""CTC on a tiny synthetic sequence task: learn to read label sequences from unsegmented frames.

Each sequence hides 2 to 5 labels from {1, ..., 5}. Each label is held for 1 to 3 frames,
with 0 to 2 frames of silence between labels and around them; a frame is the embedding of
what it holds (a label or silence) plus Gaussian noise. No frame-level alignment is given:
only the label sequence and the number of frames (ragged, padded to a common length).

A small per-frame model (an MLP over a window of 5 frames) is trained with
``jaxent.ctc_loss`` (PyTorch-style ``input_lengths`` / ``target_lengths``) and
``optax.adam``. Greedy decoding (the best class per frame, repeats merged, blanks removed)
then reads the held-out sequences. ``--plot`` draws the loss curve and the learned
alignment of one held-out sequence: the posterior occupancy of each class at each frame,
which is minus the gradient of the loss in the log-probabilities
(``jaxent.ctc_loss(..., inputs="log_probs")``).

    python examples/ctc_alignment.py --steps 300 --plot ctc.png
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

import jaxent

LABELS, DIM, WINDOW, HIDDEN = 5, 12, 5, 64  # labels 1..LABELS; class 0 is the blank (and silence)
MAX_FRAMES, MAX_LABELS = 32, 5


def make_data(rng, n, noise):
    """(frames [n, T, DIM], labels [n, S], input lengths [n], target lengths [n], frame classes [n, T])."""
    embedding = np.random.default_rng(1234).normal(size=(LABELS + 1, DIM))  # fixed: the "acoustics"
    x = np.zeros((n, MAX_FRAMES, DIM), np.float32)
    labels = np.zeros((n, MAX_LABELS), np.int32)
    truth = np.zeros((n, MAX_FRAMES), np.int32)
    il, tl = np.zeros(n, np.int32), np.zeros(n, np.int32)
    for i in range(n):
        seq = rng.integers(1, LABELS + 1, size=rng.integers(2, MAX_LABELS + 1))
        frames = [0] * int(rng.integers(0, 3))
        for label in seq:
            frames += [int(label)] * int(rng.integers(1, 4)) + [0] * int(rng.integers(0, 3))
        frames = frames[:MAX_FRAMES]
        t = len(frames)
        x[i, :t] = embedding[frames] + noise * rng.normal(size=(t, DIM))
        labels[i, : len(seq)], truth[i, :t] = seq, frames
        il[i], tl[i] = t, len(seq)
    return tuple(jnp.asarray(a) for a in (x, labels, il, tl, truth))


def init(key):
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (WINDOW * DIM, HIDDEN)) / np.sqrt(WINDOW * DIM),
        "b1": jnp.zeros(HIDDEN),
        "w2": jax.random.normal(k2, (HIDDEN, LABELS + 1)) / np.sqrt(HIDDEN),
        "b2": jnp.zeros(LABELS + 1),
    }


def logits_of(params, x):
    """[B, T, C] logits of each frame from a window of WINDOW frames around it."""
    half = WINDOW // 2
    padded = jnp.pad(x, ((0, 0), (half, half), (0, 0)))
    windows = jnp.concatenate([padded[:, i : i + x.shape[1]] for i in range(WINDOW)], axis=-1)
    return jax.nn.relu(windows @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def greedy_decode(logits, lengths):
    """Best class per frame, repeats merged, blanks removed: one list of labels per sequence."""
    best, lengths = np.asarray(jnp.argmax(logits, -1)), np.asarray(lengths)
    out = []
    for path, t in zip(best, lengths):
        seq, previous = [], 0
        for c in path[:t]:
            if c != previous and c != 0:
                seq.append(int(c))
            previous = c
        out.append(seq)
    return out


def edit_distance(a, b):
    d = np.arange(len(b) + 1)
    for i, u in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, v in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (u != v))
    return int(d[-1])


def plot(path, losses, occupancy, truth, length):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_align) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(losses)
    ax_loss.set(xlabel="Adam step", ylabel="CTC loss (mean per label)", yscale="log", title="Training loss")
    ax_loss.grid(alpha=0.3)
    ax_align.imshow(occupancy[:length].T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1)
    ax_align.plot(np.arange(length), truth[:length], "w.", markersize=6, label="frame's true class")
    ax_align.set(xlabel="frame", ylabel="class (0 = blank)", title="Learned alignment: posterior occupancy")
    ax_align.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="Adam steps on mini-batches (default 300)")
    parser.add_argument("--batch", type=int, default=64, help="sequences per step (default 64)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    parser.add_argument("--noise", type=float, default=0.5, help="standard deviation of the frame noise (0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the initialisation (0)")
    parser.add_argument("--plot", metavar="PATH", help="write the loss curve and an alignment to this PNG file")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    train_x, train_y, train_il, train_tl, _ = make_data(rng, 2048, args.noise)
    test_x, test_y, test_il, test_tl, test_truth = make_data(rng, 256, args.noise)
    print(f"{len(train_y)} train / {len(test_y)} test sequences of up to {MAX_FRAMES} frames, {LABELS} labels + blank")
    params = init(jax.random.key(args.seed))
    optimizer = optax.adam(args.lr)
    opt_state = optimizer.init(params)

    def objective(params, x, y, il, tl):
        return jaxent.ctc_loss(logits_of(params, x), y, il, tl)  # PyTorch's mean: per label, then per sequence

    @jax.jit
    def step(params, opt_state, idx):
        batch = (train_x[idx], train_y[idx], train_il[idx], train_tl[idx])
        value, grads = jax.value_and_grad(objective)(params, *batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    losses = []
    with tqdm(range(args.steps), desc="ctc_loss", unit="step") as bar:
        for i in bar:
            idx = jnp.asarray(rng.integers(0, len(train_y), size=args.batch))
            params, opt_state, value = step(params, opt_state, idx)
            losses.append(value)
            if i % 50 == 0 or i == args.steps - 1:
                bar.set_postfix(loss=f"{float(value):.4f}")
    losses = np.asarray(jnp.stack(losses))

    logits = logits_of(params, test_x)
    test_loss = float(jaxent.ctc_loss(logits, test_y, test_il, test_tl))
    decoded = greedy_decode(logits, test_il)
    targets = [[int(v) for v in np.asarray(y[:t])] for y, t in zip(test_y, test_tl)]
    exact = np.mean([d == t for d, t in zip(decoded, targets)])
    errors = sum(edit_distance(d, t) for d, t in zip(decoded, targets)) / sum(len(t) for t in targets)
    for d, t in list(zip(decoded, targets))[:3]:
        print(f"target {t}  decoded {d}")
    if args.plot:
        # Posterior occupancy = -d loss / d log p (the exact partial with inputs="log_probs").
        log_probs = jax.nn.log_softmax(logits[:1])
        occupancy = -jax.grad(
            lambda lp: jaxent.ctc_loss(lp, test_y[:1], test_il[:1], test_tl[:1], inputs="log_probs", reduction="sum")
        )(log_probs)[0]
        plot(args.plot, losses, np.asarray(occupancy), np.asarray(test_truth[0]), int(test_il[0]))
    print(
        f"summary: test loss {test_loss:.4f}, greedy decoding exact {exact:.4f}, label error rate {errors:.4f} "
        f"(first loss {losses[0]:.4f})"
    )


if __name__ == "__main__":
    main()
