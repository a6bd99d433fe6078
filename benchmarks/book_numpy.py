"""The book's one-hidden-layer network in plain NumPy float64, as Perrotta writes it.

This is the "what a user would otherwise write" baseline for benchmarks/epoch_book.py:
bias columns prepended with np.insert, weights [in + 1, out], sigmoid hidden layer,
softmax output, mean cross-entropy, plain mini-batch SGD. It is not part of the package.
"""
import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(logits):
    exponentials = np.exp(logits)
    return exponentials / np.sum(exponentials, axis=1).reshape(-1, 1)


def sigmoid_gradient(sigmoid):
    return np.multiply(sigmoid, (1 - sigmoid))


def prepend_bias(X):
    return np.insert(X, 0, 1, axis=1)


def forward(X, w1, w2):
    h = sigmoid(np.matmul(prepend_bias(X), w1))
    y_hat = softmax(np.matmul(prepend_bias(h), w2))
    return (y_hat, h)


def back(X, Y, y_hat, w2, h):
    w2_gradient = np.matmul(prepend_bias(h).T, (y_hat - Y)) / X.shape[0]
    w1_gradient = np.matmul(prepend_bias(X).T, np.matmul(y_hat - Y, w2[1:].T)
                            * sigmoid_gradient(h)) / X.shape[0]
    return (w1_gradient, w2_gradient)


def initialize_weights(n_input_variables, n_hidden_nodes, n_classes, rng):
    w1_rows = n_input_variables + 1
    w1 = rng.standard_normal((w1_rows, n_hidden_nodes)) * np.sqrt(1 / w1_rows)
    w2_rows = n_hidden_nodes + 1
    w2 = rng.standard_normal((w2_rows, n_classes)) * np.sqrt(1 / w2_rows)
    return (w1, w2)


def train_epoch(X_train, Y_train, w1, w2, batch_size, lr):
    """One epoch over the batches in order (the book does not shuffle); updates w1, w2."""
    for start in range(0, X_train.shape[0], batch_size):
        x = X_train[start:start + batch_size]
        y = Y_train[start:start + batch_size]
        y_hat, h = forward(x, w1, w2)
        w1_gradient, w2_gradient = back(x, y, y_hat, w2, h)
        w1 -= w1_gradient * lr
        w2 -= w2_gradient * lr
    return w1, w2


def classify(X, w1, w2):
    y_hat, _ = forward(X, w1, w2)
    return np.argmax(y_hat, axis=1)
