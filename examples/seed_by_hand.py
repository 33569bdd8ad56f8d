"""The seed's training loop written by hand with handnet's public pieces.

The five steps of the seed, one per line of the loop:

1. prepare the data            -> handnet.datasets.make_logistic
2. forward it through the model -> Sequential.forward (logits z = x.w + b)
3. compute the loss             -> handnet.nn.losses.binary_cross_entropy (from logits)
4. optimize                     -> Sequential.backward, then SGD.step
5. predict                      -> sigmoid of the logits, rounded

Run: python examples/seed_by_hand.py
"""

import numpy as np

from handnet import Dense, Sequential
from handnet.datasets import TEACHER_WEIGHTS, make_logistic
from handnet.nn.activations import sigmoid
from handnet.nn.losses import binary_cross_entropy
from handnet.optim.optimizers import SGD

rng = np.random.default_rng(0)

# 1. prepare: 1000 x 4 Gaussian inputs, labels y = round(sigmoid(x.w + b)) from the teacher
X, y = make_logistic(1000, random_state=rng)
Y = y.reshape(-1, 1).astype(np.float64)  # the loss works on (n_samples, n_outputs)

model = Sequential([Dense(4, 1, init="normal", random_state=rng)])  # w ~ N(0, 1), b = 0
optimizer = SGD(learning_rate=0.01)

for iteration in range(5001):
    logits = model.forward(X)  # 2. forward
    loss, dlogits = binary_cross_entropy(logits, Y)  # 3. loss and dL/dz = (sigmoid(z) - y) / m
    model.backward(dlogits)  # 4a. backprop: dL/dw = X.T @ dL/dz, dL/db = sum(dL/dz)
    optimizer.step(zip(model.parameters(), model.gradients(), strict=True))  # 4b. w -= lr dL/dw
    if iteration % 1000 == 0:
        X_test, y_test = make_logistic(200, random_state=rng)
        predictions = np.round(sigmoid(model.forward(X_test))).ravel()  # 5. predict
        accuracy = np.mean(predictions == y_test)
        print(f"iteration {iteration}: loss {loss:.4f}, test accuracy {accuracy:.3f}")

w, b = model.layers[0].weights.ravel(), model.layers[0].bias
cosine = w @ TEACHER_WEIGHTS / (np.linalg.norm(w) * np.linalg.norm(TEACHER_WEIGHTS))
print("w:", w, "b:", b, f"cosine with the teacher's w: {cosine:.4f}")
