"""A character-level language model trained with jaxent.linear_cross_entropy.

A small neural language model in the style of Bengio et al. (2003): the previous
--context characters are embedded, concatenated and passed through one GELU hidden layer;
the hidden state h (size D) predicts the next character through an output matrix W of shape
[V, D]. The loss is jaxent.linear_cross_entropy(h, W, next_char, bias=b), which fuses the
output projection and the softmax cross-entropy so that the [tokens, V] logits are never
stored. The text is Ambrose Bierce's "The Devil's Dictionary" (1911, public domain;
examples/data/README.md says where it comes from); its last 10% is held out.

With V = 82 characters the logits are tiny, so the script also prints what the fused loss
saves where it matters: the compiled temporary memory of value_and_grad at this model's
shape and at LLM-sized vocabularies, read from XLA's memory_analysis() without running
anything. Finally it samples some text from the trained model.

    python examples/tiny_language_model.py --steps 2000 --plot lm.png
"""

from __future__ import annotations

import argparse
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

import jaxent

DATA = pathlib.Path(__file__).resolve().parent / "data" / "devils_dictionary.txt"


def init(key, vocab, context, embed, hidden):
    k_emb, k_hidden, k_out = jax.random.split(key, 3)
    return {
        "embed": jax.random.normal(k_emb, (vocab, embed)),
        "w": jax.random.normal(k_hidden, (context * embed, hidden)) / math.sqrt(context * embed),
        "b": jnp.zeros(hidden),
        "w_out": jax.random.normal(k_out, (vocab, hidden)) / math.sqrt(hidden),  # [V, D], as nn.Linear
        "b_out": jnp.zeros(vocab),
    }


def hidden_state(params, contexts):
    """[..., context] character ids -> [..., D] hidden states."""
    e = params["embed"][contexts]
    return jax.nn.gelu(e.reshape(*contexts.shape[:-1], -1) @ params["w"] + params["b"])


def loss_fn(params, contexts, targets):
    h = hidden_state(params, contexts)
    return jaxent.linear_cross_entropy(h, params["w_out"], targets, bias=params["b_out"])


def windows(ids, starts, context):
    """Rows ids[s : s + context + 1] for each start s: the contexts and the next characters."""
    rows = jax.vmap(lambda s: jax.lax.dynamic_slice(ids, (s,), (context + 1,)))(starts)
    return rows[:, :context], rows[:, context]


def temp_megabytes(fn, n, d, v):
    """Compiled temporary memory of value_and_grad(fn) w.r.t. (h, W), from shapes alone."""
    shapes = (jax.ShapeDtypeStruct((n, d), jnp.float32), jax.ShapeDtypeStruct((v, d), jnp.float32))
    compiled = (
        jax.jit(jax.value_and_grad(fn, argnums=(0, 1))).lower(*shapes, jax.ShapeDtypeStruct((n,), jnp.int32)).compile()
    )
    analysis = compiled.memory_analysis()
    return float("nan") if analysis is None else analysis.temp_size_in_bytes / 1e6


def memory_table(n, d, v):
    fused = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y)
    materialised = lambda h, w, y: jaxent.cross_entropy(h @ w.T, y)
    print("compiled temporary memory of value_and_grad w.r.t. (h, W), float32:")
    print(f"  {'N':>5} {'D':>5} {'V':>7}  {'linear_cross_entropy':>20}  {'cross_entropy(h @ W.T)':>22}")
    rows = {}
    for label, shape in (
        ("this model", (n, d, v)),
        ("32k vocabulary", (4096, d, 32768)),
        ("128k vocabulary", (4096, d, 131072)),
    ):
        rows[label] = (temp_megabytes(fused, *shape), temp_megabytes(materialised, *shape))
        fused_mb, materialised_mb = rows[label]
        print(
            f"  {shape[0]:>5} {shape[1]:>5} {shape[2]:>7}  {fused_mb:>17.1f} MB  {materialised_mb:>19.1f} MB  {label}"
        )
    return rows


def plot(path, steps, train_losses, evals, unigram):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(np.arange(1, steps + 1), train_losses, lw=0.6, alpha=0.7, label="train minibatch")
    ax.plot(*zip(*evals), "o-", ms=3, label="validation (held-out 10%)")
    ax.axhline(unigram, color="gray", ls="--", label=f"unigram entropy {unigram:.2f}")
    ax.set(xlabel="Adam step", ylabel="cross-entropy (nats / character)", title="Character-level language model")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="Adam steps (default 2000)")
    parser.add_argument("--batch-size", type=int, default=256, help="characters predicted per step (default 256)")
    parser.add_argument("--context", type=int, default=16, help="characters of context (default 16)")
    parser.add_argument("--embed", type=int, default=16, help="character embedding size (default 16)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size D (default 256)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    parser.add_argument("--sample", type=int, default=300, help="characters to sample at the end (default 300)")
    parser.add_argument("--data", type=pathlib.Path, default=DATA, help="a plain-text file (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the init, the batches and the sampling (0)")
    parser.add_argument("--plot", metavar="PATH", help="write the loss curves to this PNG file")
    args = parser.parse_args(argv)

    text = args.data.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = jnp.asarray(np.array([index[c] for c in text], np.int32))
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]
    counts = np.bincount(np.asarray(train_ids), minlength=len(chars))
    frequencies = counts[counts > 0] / counts.sum()
    unigram = float(-np.sum(frequencies * np.log(frequencies)))
    print(
        f"{args.data.name}: {len(text):,} characters, vocabulary V = {len(chars)}, unigram entropy {unigram:.3f} nats"
    )

    key_init, key_batches, key_val, key_sample = jax.random.split(jax.random.key(args.seed), 4)
    params = init(key_init, len(chars), args.context, args.embed, args.hidden)
    optimizer = optax.adam(args.lr)
    opt_state = optimizer.init(params)
    val_starts = jax.random.randint(key_val, (4096,), 0, len(val_ids) - args.context - 1)
    val_batch = windows(val_ids, val_starts, args.context)

    @jax.jit
    def train_step(params, opt_state, key):
        starts = jax.random.randint(key, (args.batch_size,), 0, len(train_ids) - args.context - 1)
        loss, grads = jax.value_and_grad(loss_fn)(params, *windows(train_ids, starts, args.context))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    evaluate = jax.jit(loss_fn)
    train_losses, evals = [], [(0, float(evaluate(params, *val_batch)))]
    eval_every = max(1, args.steps // 10)
    with tqdm(range(1, args.steps + 1), desc="adam", unit="step") as bar:
        for step in bar:
            params, opt_state, loss = train_step(params, opt_state, jax.random.fold_in(key_batches, step))
            train_losses.append(loss)
            if step % eval_every == 0 or step == args.steps:
                evals.append((step, float(evaluate(params, *val_batch))))
                bar.set_postfix(loss=f"{float(loss):.3f}", validation=f"{evals[-1][1]:.3f}")
    val_loss = evals[-1][1]
    print(f"validation loss {val_loss:.3f} nats/char = {val_loss / math.log(2):.2f} bits/char")

    memory = memory_table(args.batch_size, args.hidden, len(chars))

    @jax.jit
    def next_char(params, context, key):
        h = hidden_state(params, context)
        logits = h @ params["w_out"].T + params["b_out"]  # one position: materialising V logits is fine
        return jax.random.categorical(key, logits / 0.7)  # temperature 0.7

    prompt = "LOVE, n.  " if set("LOVE, n.  ") <= set(chars) else text[split : split + args.context]
    generated = [index[c] for c in prompt.rjust(args.context)[-args.context :]]
    for i in range(args.sample):
        context = jnp.asarray(generated[-args.context :], jnp.int32)
        generated.append(int(next_char(params, context, jax.random.fold_in(key_sample, i))))
    print("sample (temperature 0.7):\n" + prompt + "".join(chars[i] for i in generated[args.context :]))

    if args.plot:
        plot(args.plot, args.steps, np.asarray(jnp.stack(train_losses)), evals, unigram)
    fused, materialised = memory["128k vocabulary"]
    print(
        f"summary: validation loss {val_loss:.4f} nats/char ({val_loss / math.log(2):.3f} bits/char), "
        f"unigram baseline {unigram:.4f}; value_and_grad temp memory at N=4096 D={args.hidden} V=131072: "
        f"fused {fused:.1f} MB vs materialised {materialised:.1f} MB"
    )


if __name__ == "__main__":
    main()
