"""A linear multiclass SVM (multi_margin_loss) against a softmax classifier on the same digits.

Three linear models scores = x W + b on scikit-learn's 8x8 digits, each trained with Adam
on its loss plus the same L2 penalty (lambda / 2) ||W||^2, from the same initialisation:

- multi_margin_loss: the Weston-Watkins multiclass hinge (PyTorch's MultiMarginLoss),
  sum over wrong classes of max(0, margin - s_y + s_c), divided by the number of classes;
- multiclass_hinge_loss: the Crammer-Singer hinge, max(0, margin + max_{c != y} s_c - s_y);
- cross_entropy: the softmax classifier (multinomial logistic regression).

The hinge losses are exactly zero, with zero gradient, for every example classified with
a margin to spare; only the others (the support vectors) move W. Cross-entropy is never
zero: every example keeps pulling. Accuracies are printed side by side.

    python examples/svm.py --steps 300 --plot svm.png
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

LOSSES = {
    "multi_margin_loss": lambda s, y: jaxent.multi_margin_loss(s, y, reduction="none"),
    "multiclass_hinge_loss": lambda s, y: jaxent.multiclass_hinge_loss(s, y, reduction="none"),
    "cross_entropy": lambda s, y: jaxent.cross_entropy(s, y, reduction="none"),
}


def load_data(key, test_fraction=0.25):
    x, y = load_digits(return_X_y=True)
    x, y = np.asarray(x / 16.0, np.float32), np.asarray(y, np.int32)
    order = np.asarray(jax.random.permutation(key, len(y)))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return jnp.asarray(x[train]), jnp.asarray(y[train]), jnp.asarray(x[test]), jnp.asarray(y[test])


def scores(params, x):
    return x @ params["w"] + params["b"]


def train(name, params, data, args):
    x_train, y_train, x_test, y_test = data
    per_example = LOSSES[name]
    optimizer = optax.adam(args.lr)
    opt_state = optimizer.init(params)

    def objective(params):
        return jnp.mean(per_example(scores(params, x_train), y_train)) + 0.5 * args.l2 * jnp.sum(params["w"] ** 2)

    def accuracy(params, x, y):
        return jnp.mean((jnp.argmax(scores(params, x), -1) == y).astype(jnp.float32))

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, accuracy(params, x_test, y_test)

    objectives, test_accuracies = [], []
    with tqdm(range(args.steps), desc=f"{name:>21}", unit="step") as bar:
        for i in bar:
            params, opt_state, value, test_accuracy = step(params, opt_state)
            objectives.append(value)
            test_accuracies.append(test_accuracy)
            if i % 50 == 0 or i == args.steps - 1:
                bar.set_postfix(objective=f"{float(value):.4f}")
    active = jnp.mean((per_example(scores(params, x_train), y_train) > 0).astype(jnp.float32))
    return {
        "train accuracy": float(accuracy(params, x_train, y_train)),
        "test accuracy": float(accuracy(params, x_test, y_test)),
        "nonzero loss": float(active),
        "objective": np.asarray(jnp.stack(objectives)),
        "test curve": np.asarray(jnp.stack(test_accuracies)),
    }


def plot(path, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_objective, ax_accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    for name, result in results.items():
        ax_objective.plot(result["objective"], label=name)
        ax_accuracy.plot(result["test curve"], label=f"{name}: {result['test accuracy']:.1%}")
    ax_objective.set(xlabel="Adam step", ylabel="loss + L2 penalty", yscale="log", title="Training objective")
    ax_accuracy.set(xlabel="Adam step", ylabel="test accuracy", ylim=(0.8, 1.0), title="Test accuracy")
    for ax in (ax_objective, ax_accuracy):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="full-batch Adam steps per model (default 300)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    parser.add_argument("--l2", type=float, default=1e-3, help="L2 penalty lambda on W (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the initialisation (0)")
    parser.add_argument("--plot", metavar="PATH", help="write the objective and accuracy curves to this PNG file")
    args = parser.parse_args(argv)

    key_split, key_init = jax.random.split(jax.random.key(args.seed))
    data = load_data(key_split)
    print(f"digits: {len(data[1])} train / {len(data[3])} test images, linear models over 64 pixels")
    params = {"w": 0.01 * jax.random.normal(key_init, (64, 10)), "b": jnp.zeros(10)}
    results = {name: train(name, params, data, args) for name in LOSSES}

    print(f"\n{'loss':<22} {'train acc':>9} {'test acc':>9} {'examples with loss > 0':>23}")
    for name, r in results.items():
        print(f"{name:<22} {r['train accuracy']:>9.4f} {r['test accuracy']:>9.4f} {r['nonzero loss']:>23.1%}")
    if args.plot:
        plot(args.plot, results)
    print("summary: test accuracy " + ", ".join(f"{name} {r['test accuracy']:.4f}" for name, r in results.items()))


if __name__ == "__main__":
    main()
