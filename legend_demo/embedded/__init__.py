"""The embedded small LeGend-Diffusion model (CPU default engine)."""
