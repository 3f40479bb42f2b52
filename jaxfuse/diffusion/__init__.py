"""DDPM pieces for diffusion-based fusion: the cosine schedule, noise levels, q_sample, the eps loss.

SR3 style (Saharia et al. 2021; Nichol & Dhariwal 2021 for the cosine schedule), as DMFuse's
``model/sr3_modules/diffusion.py``: the network is conditioned on the continuous noise level
gamma = sqrt(alpha_bar), drawn uniformly between sqrt(alpha_bar_{t-1}) and sqrt(alpha_bar_t).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def cosine_schedule(num_timesteps: int = 2000, s: float = 8e-3) -> dict[str, np.ndarray]:
    """Float64 cosine schedule: betas (T,), alphas_cumprod (T,), sqrt_alphas_cumprod_prev (T + 1,).

    tau_k = k/T + s; a_k = cos(tau_k / (1 + s) * pi/2)^2 / a_0; beta_k = min(1 - a_k / a_{k-1}, 0.999).
    """
    tau = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps + s
    a = np.cos(tau / (1 + s) * np.pi / 2) ** 2
    a = a / a[0]
    betas = np.clip(1 - a[1:] / a[:-1], None, 0.999)
    alphas_cumprod = np.cumprod(1.0 - betas)
    return {"betas": betas, "alphas_cumprod": alphas_cumprod,
            "sqrt_alphas_cumprod_prev": np.sqrt(np.append(1.0, alphas_cumprod))}


def gamma_interval(sqrt_alphas_cumprod_prev: np.ndarray, t) -> tuple:
    """(sap[t-1], sap[t]): the noise-level interval of step t (1-based)."""
    sap = jnp.asarray(np.asarray(sqrt_alphas_cumprod_prev, np.float32))
    return sap[t - 1], sap[t]


def sample_gamma(rng, sqrt_alphas_cumprod_prev: np.ndarray, t, shape) -> jax.Array:
    """gamma ~ U between sap[t-1] and sap[t], one per element of ``shape``, float32."""
    lo, hi = gamma_interval(sqrt_alphas_cumprod_prev, t)
    return lo + (hi - lo) * jax.random.uniform(rng, shape, jnp.float32)


def q_sample(x0, gamma_B, noise):
    """x_t = gamma x0 + sqrt(1 - gamma^2) eps, per sample, in float32 (also in bf16 runs)."""
    g = gamma_B.astype(jnp.float32).reshape((-1,) + (1,) * (x0.ndim - 1))
    return g * x0.astype(jnp.float32) + jnp.sqrt(1 - g * g) * noise.astype(jnp.float32)


def eps_loss(denoise_fn, x0, rng, sqrt_alphas_cumprod_prev: np.ndarray):
    """The DDPM objective as SR3/DMFuse code it: one t ~ U{1..T} per batch, gamma per sample,
    mean squared error of the predicted noise. ``denoise_fn(x_t, gamma) -> eps_hat``."""
    k_t, k_g, k_n = jax.random.split(rng, 3)
    num_timesteps = len(sqrt_alphas_cumprod_prev) - 1
    t = jax.random.randint(k_t, (), 1, num_timesteps + 1)
    gamma = sample_gamma(k_g, sqrt_alphas_cumprod_prev, t, (x0.shape[0],))
    noise = jax.random.normal(k_n, x0.shape, jnp.float32)
    return jnp.mean(jnp.square(noise - denoise_fn(q_sample(x0, gamma, noise), gamma)))
