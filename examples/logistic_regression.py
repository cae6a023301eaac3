"""Logistic regression by plain gradient descent on scikit-learn's breast-cancer data.

A linear model p(malignant | x) = sigmoid(w·x + b) over the 30 standardised features of
the 569 tumours of scikit-learn's bundled Wisconsin breast-cancer data, trained by full-batch
gradient descent (optax.sgd) on jaxent.binary_cross_entropy_with_logits.

It then trains the same model again with the loss written as a negative log-likelihood:
the Bernoulli log-probabilities log p(y=1) = log_sigmoid(z) and log p(y=0) = log_sigmoid(-z)
go to jaxent.nll_loss with integer labels. Both curves are the same numbers: binary
cross-entropy *is* the negative log-likelihood of a Bernoulli model.

    python examples/logistic_regression.py --steps 500 --plot logistic.png
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_breast_cancer
from tqdm import tqdm

import jaxent


def load_data(key, test_fraction=0.25):
    """Breast-cancer features standardised with the training statistics; label 1 = malignant."""
    data = load_breast_cancer()
    x = np.asarray(data.data, np.float32)
    y = (data.target == 0).astype(np.int32)  # scikit-learn codes malignant as 0
    order = np.asarray(jax.random.permutation(key, len(y)))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0)
    x = (x - mean) / std
    return jnp.asarray(x[train]), jnp.asarray(y[train]), jnp.asarray(x[test]), jnp.asarray(y[test]), data.feature_names


def logits(params, x):
    return x @ params["w"] + params["b"]


def bce_loss(params, x, y):
    """Binary cross-entropy on the logits: -[y log sigmoid(z) + (1-y) log(1 - sigmoid(z))]."""
    return jaxent.binary_cross_entropy_with_logits(logits(params, x), y.astype(x.dtype))


def nll_loss(params, x, y):
    """The same loss as a negative log-likelihood over the two outcomes {benign, malignant}."""
    z = logits(params, x)
    # log(1 - sigmoid(z)) = log_sigmoid(-z): stable for large |z|
    log_probs = jnp.stack([jax.nn.log_sigmoid(-z), jax.nn.log_sigmoid(z)], axis=-1)
    return jaxent.nll_loss(log_probs, y)


def accuracy(params, x, y):
    return jnp.mean(((logits(params, x) > 0) == (y == 1)).astype(jnp.float32))


def train(loss_fn, data, steps, lr, name):
    """Full-batch gradient descent; returns the final parameters and the per-step train/test losses."""
    x_train, y_train, x_test, y_test = data
    params = {"w": jnp.zeros(x_train.shape[1]), "b": jnp.zeros(())}
    optimizer = optax.sgd(lr)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params, x_train, y_train)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, loss_fn(params, x_test, y_test)

    train_losses, test_losses = [], []
    with tqdm(range(steps), desc=f"sgd on {name}", unit="step") as bar:
        for i in bar:
            params, opt_state, loss, test_loss = step(params, opt_state)
            train_losses.append(loss)
            test_losses.append(test_loss)
            if i % 50 == 0 or i == steps - 1:
                bar.set_postfix(loss=f"{float(loss):.4f}")
    return params, np.asarray(jnp.stack(train_losses)), np.asarray(jnp.stack(test_losses))


def plot(path, curves, accuracies):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curves["bce train"], label="binary_cross_entropy_with_logits, train", lw=3, alpha=0.5)
    ax.plot(curves["nll train"], "k--", label="nll_loss(Bernoulli log-probs), train", lw=1)
    ax.plot(curves["bce test"], label="binary_cross_entropy_with_logits, test", lw=3, alpha=0.5)
    ax.plot(curves["nll test"], "k:", label="nll_loss(Bernoulli log-probs), test", lw=1)
    ax.set(xlabel="gradient step", ylabel="loss (nats)", yscale="log")
    ax.set_title(f"Logistic regression, breast cancer: test accuracy {accuracies['test']:.1%}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500, help="gradient-descent steps (default 500)")
    parser.add_argument("--lr", type=float, default=0.5, help="SGD learning rate (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
    parser.add_argument("--plot", metavar="PATH", help="write the loss curves to this PNG file")
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test, feature_names = load_data(jax.random.key(args.seed))
    print(f"breast cancer: {len(y_train)} train / {len(y_test)} test tumours, {x_train.shape[1]} features")
    data = (x_train, y_train, x_test, y_test)

    params, bce_train, bce_test = train(bce_loss, data, args.steps, args.lr, "BCE")
    nll_params, nll_train, nll_test = train(nll_loss, data, args.steps, args.lr, "NLL")
    gap = float(np.max(np.abs(bce_train - nll_train)))
    param_gap = float(jnp.max(jnp.abs(params["w"] - nll_params["w"])))

    accuracies = {"train": float(accuracy(params, x_train, y_train)), "test": float(accuracy(params, x_test, y_test))}
    top = np.argsort(-np.abs(np.asarray(params["w"])))[:3]
    print("largest weights: " + ", ".join(f"{feature_names[i]} {float(params['w'][i]):+.2f}" for i in top))
    print(f"loss after {args.steps} steps: train {bce_train[-1]:.4f}, test {bce_test[-1]:.4f}")
    print(f"BCE vs NLL: largest gap between the two loss curves {gap:.1e}, between the weights {param_gap:.1e}")
    if args.plot:
        curves = {"bce train": bce_train, "nll train": nll_train, "bce test": bce_test, "nll test": nll_test}
        plot(args.plot, curves, accuracies)
    print(
        f"summary: train accuracy {accuracies['train']:.4f}, test accuracy {accuracies['test']:.4f}, "
        f"BCE-vs-NLL curve gap {gap:.1e}"
    )


if __name__ == "__main__":
    main()
