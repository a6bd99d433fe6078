"""One training step, as it reads in a textbook: forward, loss, backward, regularise, update.

train() (fastmlp/train.py) keeps the bookkeeping around it: epochs, batching, shuffling
and augmentation, checkpoints, interrupts, logs.
"""
import math


class Diverged(RuntimeError):
    """The loss or the weights became NaN or Inf; the message names epoch, step and layer."""


def step(network, optimizer, x, t, count, lr, max_norm=None, where=""):
    """Train `network` on the batch x[B, D] with one-hot targets t[B, K]; returns the
    batch's mean loss. count: the step number (it keys the dropout masks); lr: this
    step's learning rate. Raises Diverged (naming `where` and the first non-finite
    layer) when the loss is not finite; the parameters are then not updated."""
    # 1-3. Forward through the graph node by node, the head's loss from the logits, and
    # backward in reverse order, every gradient into network.grads (train_step fuses the
    # last dense layer, the loss and their gradients into one kernel where that applies).
    loss = network.train_step(x, t, count)
    if not math.isfinite(loss):
        raise Diverged(f"diverged at {where}: loss is {loss}; first non-finite: {first_bad_layer(network)}")
    # 4-5. Regularise and update: the optimizer's weight decay (L2 folded into dW, or
    # AdamW's decoupled shrinking of the weights), then its rule, one kernel call over the
    # flat parameter vector.
    optimizer.step(network.params, network.grads, lr)
    # ... and cap each unit's incoming weight norm.
    if max_norm is not None:
        for W in network.W:
            network.k.max_norm(W, max_norm)
    return loss


def first_bad_layer(network):
    """The first dense node whose weights, or node whose output, is not finite."""
    import numpy as np
    for n, W, b in zip(network.dense, network.W, network.b):
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            return f"{n.name} (weights)"
    for n in network.order:
        v = network.values.get(n.name)
        if v is not None and not np.isfinite(v).all():
            return f"{n.name} (output)"
    return "the loss"
