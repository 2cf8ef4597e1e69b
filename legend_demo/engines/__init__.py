"""Generation engines behind one interface (base.Engine): LeGend-Diffusion on FLUX, the embedded model, …"""
