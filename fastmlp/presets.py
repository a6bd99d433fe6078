"""Named configurations: a preset sets TrainConfig fields; options given explicitly win."""

PRESETS = {
    # The final network of Perrotta's "Programming Machine Learning": 784-100-10, sigmoid,
    # softmax, standardized inputs, batch 256, lr 1, 10 epochs, no shuffling, his init.
    "book": dict(hidden=(100,), activation=("sigmoid",), standardize=True, batch_size=256,
                 lr=1.0, epochs=10, init="book", shuffle=False),
}
