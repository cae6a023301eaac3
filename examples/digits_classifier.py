"""An MLP on scikit-learn's 8x8 handwritten digits with jaxent.cross_entropy and optax.adam.

The 1,797 bundled digit images (64 pixels each, 10 classes) are split into train and test
sets; a one-hidden-layer MLP is trained with minibatch Adam on the cross-entropy of integer
labels, with label smoothing and, optionally, per-class weights. The train step is one
jitted function. After training, jax.vmap over jax.grad gives the gradient of every test
example separately (per-example gradients, as used for influence scores or differential
privacy): their norms single out the hardest examples, and their weighted mean is checked
against the batch gradient.

    python examples/digits_classifier.py --epochs 30 --label-smoothing 0.1 --plot digits.png
    python examples/digits_classifier.py --class-weights balanced
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from tqdm import tqdm

import jaxent


def load_data(key, test_fraction=0.25):
    """Pixels scaled to [0, 1]; a seeded random split."""
    x, y = load_digits(return_X_y=True)
    x, y = np.asarray(x / 16.0, np.float32), np.asarray(y, np.int32)
    order = np.asarray(jax.random.permutation(key, len(y)))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return jnp.asarray(x[train]), jnp.asarray(y[train]), jnp.asarray(x[test]), jnp.asarray(y[test])


def init_mlp(key, sizes):
    """He-initialised dense layers: a list of {"w", "b"}."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / m), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def mlp(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch size (default 64)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    parser.add_argument("--label-smoothing", type=float, default=0.1, help="cross_entropy label_smoothing (0.1)")
    parser.add_argument(
        "--class-weights",
        choices=["none", "balanced"],
        default="none",
        help="per-class weights of cross_entropy: none, or balanced = n / (10 * count of the class)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the init and the shuffling (0)")
    parser.add_argument("--plot", metavar="PATH", help="write the loss and accuracy curves to this PNG file")
    args = parser.parse_args(argv)

    key_split, key_init, key_shuffle = jax.random.split(jax.random.key(args.seed), 3)
    x_train, y_train, x_test, y_test = load_data(key_split)
    counts = jnp.bincount(y_train, length=10)
    weight = None if args.class_weights == "none" else len(y_train) / (10 * counts.astype(jnp.float32))
    print(f"digits: {len(y_train)} train / {len(y_test)} test images, 64 pixels, 10 classes")

    params = init_mlp(key_init, [64, args.hidden, 10])
    optimizer = optax.adam(args.lr)
    opt_state = optimizer.init(params)

    def loss_fn(params, x, y, reduction="mean"):
        return jaxent.cross_entropy(
            mlp(params, x), y, label_smoothing=args.label_smoothing, weight=weight, reduction=reduction
        )

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params, x, y):
        accuracy = jnp.mean((jnp.argmax(mlp(params, x), -1) == y).astype(jnp.float32))
        return loss_fn(params, x, y), accuracy

    batches = len(y_train) // args.batch_size  # full batches only: one compiled shape
    step_losses, history = [], []
    with tqdm(range(args.epochs), desc="adam", unit="epoch") as bar:
        for epoch in bar:
            order = jax.random.permutation(jax.random.fold_in(key_shuffle, epoch), len(y_train))
            for i in range(batches):
                idx = order[i * args.batch_size : (i + 1) * args.batch_size]
                params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx])
                step_losses.append(loss)
            test_loss, test_accuracy = evaluate(params, x_test, y_test)
            history.append((epoch + 1, float(test_loss), float(test_accuracy)))
            bar.set_postfix(loss=f"{float(loss):.3f}", test_accuracy=f"{float(test_accuracy):.3f}")

    train_accuracy = float(evaluate(params, x_train, y_train)[1])
    test_accuracy = history[-1][2]
    print(f"after {args.epochs} epochs: test loss {history[-1][1]:.4f}, train accuracy {train_accuracy:.4f}")

    # Per-example gradients: vmap the gradient of one example's loss over the test set. With
    # reduction="sum" one example's loss is weight[y] * loss, so the batch "mean" gradient is
    # sum_n weight[y_n] g_n / sum_n weight[y_n].
    def example_loss(params, x, y):
        return loss_fn(params, x[None], y[None], reduction="sum")

    per_example = jax.jit(jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0)))(params, x_test, y_test)
    norms = np.asarray(jax.vmap(optax.global_norm)(per_example))
    denominator = jnp.sum(weight[y_test]) if weight is not None else len(y_test)
    mean_of_examples = jax.tree.map(lambda g: jnp.sum(g, 0) / denominator, per_example)
    batch_grad = jax.grad(loss_fn)(params, x_test, y_test)
    mismatch = max(
        float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(mean_of_examples), jax.tree.leaves(batch_grad))
    )
    predictions = np.asarray(jnp.argmax(mlp(params, x_test), -1))
    print(
        f"per-example gradient norms on the test set: median {np.median(norms):.3g}, "
        f"90th percentile {np.percentile(norms, 90):.3g}, max {norms.max():.3g}"
    )
    print(
        "largest (the hardest test examples): "
        + ", ".join(
            f"#{i} label {int(y_test[i])} predicted {predictions[i]} norm {norms[i]:.2f}"
            for i in np.argsort(-norms)[:5]
        )
    )
    print(f"mean of per-example gradients vs batch gradient: largest difference {mismatch:.1e}")

    if args.plot:
        plot(args.plot, np.asarray(jnp.stack(step_losses)), history, batches, args)
    print(
        f"summary: test accuracy {test_accuracy:.4f}, train accuracy {train_accuracy:.4f}, "
        f"per-example gradient norm median {np.median(norms):.3g} max {norms.max():.3g}"
    )


def plot(path, step_losses, history, steps_per_epoch, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs, test_loss, test_accuracy = (np.asarray(c) for c in zip(*history))
    fig, (ax_loss, ax_accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(np.arange(1, len(step_losses) + 1) / steps_per_epoch, step_losses, lw=0.8, label="train minibatch")
    ax_loss.plot(epochs, test_loss, "o-", ms=3, label="test")
    options = f"label_smoothing={args.label_smoothing}, class weights: {args.class_weights}"
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy (nats)", yscale="log", title=f"Loss ({options})")
    ax_loss.legend()
    ax_accuracy.plot(epochs, test_accuracy, "o-", ms=3)
    ax_accuracy.set(xlabel="epoch", ylabel="test accuracy", title=f"Test accuracy: {test_accuracy[-1]:.1%}")
    ax_accuracy.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
