"""jaxfuse: infrared-visible image fusion networks in JAX/Flax."""
