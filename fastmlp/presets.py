"""Named configurations: a preset sets TrainConfig fields; options given explicitly win."""

PRESETS = {
    # The final network of Perrotta's "Programming Machine Learning": 784-100-10, sigmoid,
    # softmax, standardized inputs, batch 256, lr 1, 10 epochs, no shuffling, his init.
    "book": dict(hidden=(100,), activation=("sigmoid",), standardize=True, batch_size=256,
                 lr=1.0, epochs=10, init="book", shuffle=False),
    # The book's 99% exercise: 1200 sigmoid hidden units, batch 600, lr 0.8, 100 epochs.
    "book99": dict(hidden=(1200,), activation=("sigmoid",), standardize=True, batch_size=600,
                   lr=0.8, epochs=100, init="book", shuffle=False),
    # Our best configuration for the full 10k test set (see BENCHMARKS.md for figures).
    # Every training image is moved by up to 1 pixel each way at every step (--shift 1).
    "deep": dict(hidden=(1200, 1200), activation=("shifted_relu",), input_dropout=0.2, dropout=0.5,
                 init="he", optimizer="adam", lr=0.001, lr_schedule="cosine", epochs=50,
                 batch_size=256, batch_ramp=32, standardize=True, shuffle=True, shift=1),
}
