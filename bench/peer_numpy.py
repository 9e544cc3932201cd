"""peer_numpy.py — the numpy float64 peer of bench_threads.c, written for speed: weights and
biases kept apart (no bias column to concatenate), every buffer preallocated, in-place ufuncs,
the mini-batch gathered with np.take(out=). Same network (784-256-128-10, sigmoid hidden and
output, logistic cost), data, initial weights and config (sgd, lr 0.1, lambda 0, batch 256) as
the C side, whose files it reads: DIR/X (m x 784), DIR/Y (m x 10), DIR/theta (unrolled, the
course layout: column 0 of each layer is the bias). Thread count from OPENBLAS_NUM_THREADS.
Prints "epoch_samples_per_s N" (a whole epoch with the exact J over all rows at its end),
"steps_samples_per_s N" (the same epochs' training steps alone: the epoch without its J pass,
timed up to the J pass) and "full_grad_s S" (J + gradient over all rows).
usage: python3 peer_numpy.py DIR M BATCH
"""
import sys
import time

import numpy as np

SIZES = [784, 256, 128, 10]
LR = 0.1


def load(d, m):
    X = np.fromfile(d + "/X").reshape(m, SIZES[0])
    Y = np.fromfile(d + "/Y").reshape(m, SIZES[-1])
    theta = np.fromfile(d + "/theta")
    Ws, bs, off = [], [], 0
    for l in range(len(SIZES) - 1):
        n = SIZES[l + 1] * (SIZES[l] + 1)
        T = theta[off:off + n].reshape(SIZES[l + 1], SIZES[l] + 1)
        off += n
        bs.append(T[:, 0].copy())
        Ws.append(np.ascontiguousarray(T[:, 1:]))
    return X, Y, Ws, bs


def sigmoid_(z):
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)


class Net:
    def __init__(self, Ws, bs, rows):
        self.Ws, self.bs = Ws, bs
        self.A = [np.empty((rows, s)) for s in SIZES[1:]]
        self.D = [np.empty((rows, s)) for s in SIZES[1:]]
        self.dW = [np.empty_like(W) for W in Ws]
        self.db = [np.empty_like(b) for b in bs]

    def forward(self, X, n):
        a = X
        for l, (W, b) in enumerate(zip(self.Ws, self.bs)):
            z = self.A[l][:n]
            np.matmul(a, W.T, out=z)
            z += b
            sigmoid_(z)
            a = z
        return a

    def cost(self, a, Y):
        # logistic cost, clipped as the activations are
        eps = 1e-300
        return -(np.sum(Y * np.log(a + eps)) + np.sum((1.0 - Y) * np.log(1.0 - a + eps)))

    def grad(self, X, Y, n):
        a = self.forward(X, n)
        L = len(self.Ws)
        d = self.D[L - 1][:n]
        np.subtract(a, Y, out=d)
        d *= 1.0 / n
        for l in range(L - 1, -1, -1):
            prev = X if l == 0 else self.A[l - 1][:n]
            np.matmul(d.T, prev, out=self.dW[l])
            np.sum(d, axis=0, out=self.db[l])
            if l > 0:
                dn = self.D[l - 1][:n]
                np.matmul(d, self.Ws[l], out=dn)
                dn *= prev
                dn *= 1.0 - prev
                d = dn


def main():
    d, m, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X, Y, Ws, bs = load(d, m)
    net = Net(Ws, bs, batch)
    Xb = np.empty((batch, SIZES[0]))
    Yb = np.empty((batch, SIZES[-1]))
    rng = np.random.default_rng(1)
    rates, steps = [], []
    evalnet = Net(Ws, bs, 2048)
    for _ in range(2):
        t0 = time.perf_counter()
        perm = rng.permutation(m)
        for b0 in range(0, m, batch):
            idx = perm[b0:b0 + batch]
            n = len(idx)
            np.take(X, idx, axis=0, out=Xb[:n])
            np.take(Y, idx, axis=0, out=Yb[:n])
            net.grad(Xb[:n], Yb[:n], n)
            for l in range(len(Ws)):
                net.dW[l] *= LR
                Ws[l] -= net.dW[l]
                net.db[l] *= LR
                bs[l] -= net.db[l]
        t_steps = time.perf_counter() - t0
        J = 0.0
        for r0 in range(0, m, 2048):
            n = min(2048, m - r0)
            J += evalnet.cost(evalnet.forward(X[r0:r0 + n], n), Y[r0:r0 + n])
        J /= m
        rates.append(m / (time.perf_counter() - t0))
        steps.append(m / t_steps)
    print("epoch_samples_per_s %.0f" % sorted(rates)[len(rates) // 2])
    print("steps_samples_per_s %.0f" % sorted(steps)[len(steps) // 2])
    full = Net(Ws, bs, m)
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        full.grad(X, Y, m)
        a = full.A[-1]
        J = full.cost(a, Y) / m
        ts.append(time.perf_counter() - t0)
    print("full_grad_s %.4f" % sorted(ts)[1])


main()
