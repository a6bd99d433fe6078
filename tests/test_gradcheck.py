"""Central finite differences of a whole network in float64 against its backward pass."""
import numpy as np
import pytest

from fastmlp import Network


@pytest.mark.parametrize("activations", [["sigmoid"], ["tanh"], ["shifted_relu", "relu"]])
def test_network_gradient_matches_finite_differences(activations, rng):
    sizes = [6] + [5] * len(activations) + [4]
    net = Network(sizes, activations, max_batch=7, dtype=np.float64, init="glorot", seed=3)
    net.b[0][:] = rng.standard_normal(5) * 0.1
    x = rng.standard_normal((7, 6))
    t = np.eye(4)[rng.integers(0, 4, 7)]

    def loss():
        net.forward(x)
        return net.loss_and_backward(x, t)

    loss()
    analytic = net.grads.copy()
    eps = 1e-6
    numeric = np.empty_like(analytic)
    for i in range(net.params.size):
        keep = net.params[i]
        net.params[i] = keep + eps
        up = loss()
        net.params[i] = keep - eps
        down = loss()
        net.params[i] = keep
        numeric[i] = (up - down) / (2 * eps)
    # Kinks (ReLU at 0, shifted ReLU at -1) would break the check: make sure no
    # pre-activation sits within eps * (max |x|) * fan_in of one.
    for z in net.Z[:-1]:
        assert np.abs(z[:7]).min() > 1e-4 and np.abs(z[:7] + 1).min() > 1e-4
    # Central differences: O(eps^2) truncation + O(1e-16 / eps) rounding ~ 1e-10.
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
