"""The quantities of the VAE and GAN derivations, computed numerically so the book can check them.

VAE (chapter 3):

* `gaussian_kl_monte_carlo`: KL(N(mean, diag exp(logvar)) || N(0, I)) estimated by
  sampling, to set beside the closed form `companion.models.vae.gaussian_kl`;
* `gradient_estimates`: per-sample estimates of d/dmean E_{z ~ N(mean, std^2)}[f(z)] by the
  reparameterization trick and by the score function (REINFORCE), whose variances the
  chapter compares.

GAN (chapter 4), for densities given on a uniform grid with spacing `dx`:

* `optimal_discriminator`: D*(x) = p_data(x) / (p_data(x) + p_g(x));
* `gan_value`: V(G, D) = E_data[log D(x)] + E_g[log(1 - D(x))];
* `jensen_shannon`: JSD(p || q) in nats, so that V(G, D*) = -log 4 + 2 JSD(p_data || p_g);
* `wasserstein_1d`: the earth mover's distance W1(p, q) = integral of |F_p - F_q| in 1-D;
* `generator_loss_gradients`: the gradients of the saturating and non-saturating
  generator losses with respect to the discriminator's logit, as functions of D(G(z)).
"""

import numpy as np

from companion import validation

__all__ = [
    "gan_value",
    "gaussian_kl_monte_carlo",
    "generator_loss_gradients",
    "gradient_estimates",
    "jensen_shannon",
    "optimal_discriminator",
    "wasserstein_1d",
]


def _density(name, p):
    p = np.asarray(p, np.float64)
    if p.ndim != 1 or (p < 0).any() or not np.isfinite(p).all():
        raise ValueError(f"Expected `{name}` to be a 1-D array of finite, non-negative densities. Received: shape {p.shape}")
    return p


def _pair(p, q, names=("p", "q")):
    p, q = _density(names[0], p), _density(names[1], q)
    if p.shape != q.shape:
        raise ValueError(f"Expected `{names[0]}` and `{names[1]}` on one grid. Received shapes {p.shape} and {q.shape}")
    return p, q


def optimal_discriminator(p_data, p_model):
    """D*(x) = p_data / (p_data + p_g); 1/2 where both densities vanish (any value is optimal there)."""
    p_data, p_model = _pair(p_data, p_model, ("p_data", "p_model"))
    total = p_data + p_model
    return np.divide(p_data, total, out=np.full_like(total, 0.5), where=total > 0)


def gan_value(p_data, p_model, discriminator, dx):
    """V(G, D) = integral of p_data log D + p_g log(1 - D), by the rectangle rule."""
    p_data, p_model = _pair(p_data, p_model, ("p_data", "p_model"))
    d = np.asarray(discriminator, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p_data > 0, p_data * np.log(d), 0.0) + np.where(p_model > 0, p_model * np.log1p(-d), 0.0)
    return float(np.sum(terms) * dx)


def jensen_shannon(p, q, dx):
    """JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in nats (at most log 2)."""
    p, q = _pair(p, q)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(0.5 * np.sum(kl_pm + kl_qm) * dx)


def wasserstein_1d(p, q, dx):
    """W1(p, q) = integral |F_p(x) - F_q(x)| dx for densities on a 1-D grid (the CDFs by cumulative sums)."""
    p, q = _pair(p, q)
    return float(np.sum(np.abs(np.cumsum(p) - np.cumsum(q)) * dx) * dx)


def generator_loss_gradients(d):
    """d(loss)/d(logit) of the two generator losses, where d = D(G(z)) = sigmoid(logit).

    * saturating (the minimax game): loss log(1 - D), gradient -D, which vanishes when the
      discriminator confidently rejects the samples (D -> 0), i.e. early in training;
    * non-saturating (Goodfellow et al. 2014's recommendation): loss -log D, gradient
      -(1 - D), largest exactly there.
    """
    d = np.asarray(d, np.float64)
    if (d <= 0).any() or (d >= 1).any():
        raise ValueError("Expected `d` = D(G(z)) strictly between 0 and 1")
    return {"saturating": -d, "non_saturating": -(1.0 - d)}


def gradient_estimates(f, df, mean, std, n, seed=None):
    """Per-sample estimates of d/dmean E_{z ~ N(mean, std^2)}[f(z)], with z = mean + std * eps.

    Args:
        f: the function, vectorized over a NumPy array.
        df: its derivative (the reparameterization estimator needs it).
        mean, std: the Gaussian's parameters (scalars).
        n: number of samples.

    Returns:
        dict of `(n,)` arrays: `reparameterization` = f'(z) and
        `score_function` = f(z) (z - mean) / std^2. Both have the true gradient as their
        mean; the chapter measures their variances.
    """
    validation.number("std", std, low=0, low_open=True)
    eps = np.random.default_rng(seed).standard_normal(int(n))
    z = mean + std * eps
    return {"reparameterization": np.asarray(df(z), np.float64), "score_function": np.asarray(f(z), np.float64) * eps / std}


def gaussian_kl_monte_carlo(mean, logvar, n, seed=None):
    """KL(N(mean, diag exp(logvar)) || N(0, I)) = E_q[log q(z) - log p(z)], estimated with `n` samples.

    Returns:
        `(estimate, standard_error)`.
    """
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    if mean.shape != logvar.shape or mean.ndim != 1:
        raise ValueError(f"Expected `mean` and `logvar` of one shape (d,). Received: {mean.shape} and {logvar.shape}")
    eps = np.random.default_rng(seed).standard_normal((int(n), len(mean)))
    z = mean + np.exp(0.5 * logvar) * eps
    log_q = -0.5 * np.sum(eps**2 + logvar + np.log(2 * np.pi), axis=1)
    log_p = -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=1)
    differences = log_q - log_p
    return float(differences.mean()), float(differences.std(ddof=1) / np.sqrt(len(differences)))
