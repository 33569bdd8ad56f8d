"""A convolution and batch normalisation by hand, loop by loop, next to handnet's layers.

For one small batch of images this script computes, with plain Python loops that
follow the formulas of docs/cnn.md and docs/normalization.md:

1. the convolution's output
   Z[n, f, i, j] = b[f] + sum_{c, p, q} W[f, c, p, q] X[n, c, i s + p, j s + q]
2. its weight gradient
   dW[f, c, p, q] = sum_{n, i, j} G[n, f, i, j] X[n, c, i s + p, j s + q]
3. its input gradient
   dX[n, c, y, x] = sum over the outputs (f, i, j) whose window covers (y, x)
4. batch normalisation's compact backward
   dX = gamma / sigma * (G - mean(G) - x_hat * mean(G * x_hat))

and checks each against handnet's ``Conv2D`` and ``BatchNorm`` (which compute them with
im2col, matrix products and col2im), then checks handnet's gradients against central
finite differences. Run: python examples/conv_by_hand.py
"""

import numpy as np

from handnet import BatchNorm, Conv2D

rng = np.random.default_rng(0)
n, C, H, W = 2, 2, 5, 5  # two images of two channels, 5x5
F, K, S = 3, 3, 2  # three 3x3 filters, stride 2, no padding
X = rng.normal(size=(n, C, H, W))
H_out, W_out = (H - K) // S + 1, (W - K) // S + 1

layer = Conv2D(C, F, K, stride=S, random_state=1)
weights, bias = layer.weights, layer.bias
G = rng.normal(size=(n, F, H_out, W_out))  # dL/dZ, as the layer above would send it

# 1. forward: each output is the filter's dot product with one window of the input
Z = np.zeros((n, F, H_out, W_out))
for s in range(n):
    for f in range(F):
        for i in range(H_out):
            for j in range(W_out):
                window = X[s, :, i * S : i * S + K, j * S : j * S + K]
                Z[s, f, i, j] = np.sum(weights[f] * window) + bias[f]

# 2 and 3. backward: every output spreads its gradient over the window it read
dW = np.zeros_like(weights)
db = G.sum(axis=(0, 2, 3))
dX = np.zeros_like(X)
for s in range(n):
    for f in range(F):
        for i in range(H_out):
            for j in range(W_out):
                window = (s, slice(None), slice(i * S, i * S + K), slice(j * S, j * S + K))
                dW[f] += G[s, f, i, j] * X[window]
                dX[window] += G[s, f, i, j] * weights[f]

out = layer.forward(X, training=True)
dX_layer = layer.backward(G)
print("conv forward  matches the loops:", np.allclose(out, Z))
print("conv dW       matches the loops:", np.allclose(layer.grad_weights, dW))
print("conv db       matches the loops:", np.allclose(layer.grad_bias, db))
print("conv dX       matches the loops:", np.allclose(dX_layer, dX))

# The same gradients from central finite differences of L = sum(G * conv(X)).
step = 1e-6


def loss_of_input(images: np.ndarray) -> float:
    return float(np.sum(G * layer.forward(images)))


numeric = np.zeros_like(X)
for index in np.ndindex(X.shape):
    shifted = X.copy()
    shifted[index] += step
    up = loss_of_input(shifted)
    shifted[index] -= 2 * step
    numeric[index] = (up - loss_of_input(shifted)) / (2 * step)
print("conv dX       matches finite differences:", np.allclose(dX_layer, numeric, atol=1e-6))

# 4. batch normalisation over the convolution's output: per channel, over (n, H, W)
norm = BatchNorm(F)
norm.build((F, H_out, W_out), rng, np.float64)
norm.gamma[...] = rng.normal(size=F)
Y = norm.forward(Z, training=True)
G2 = rng.normal(size=Y.shape)
mean = Z.mean(axis=(0, 2, 3), keepdims=True)
sigma = np.sqrt(Z.var(axis=(0, 2, 3), keepdims=True) + norm.eps)
x_hat = (Z - mean) / sigma
gamma = norm.gamma.reshape(1, F, 1, 1)
print("batchnorm out matches its formula:",
      np.allclose(Y, gamma * x_hat + norm.beta.reshape(1, F, 1, 1)))
compact = gamma / sigma * (
    G2 - G2.mean(axis=(0, 2, 3), keepdims=True)
    - x_hat * (G2 * x_hat).mean(axis=(0, 2, 3), keepdims=True)
)
print("batchnorm dX  matches the compact form:", np.allclose(norm.backward(G2), compact))
