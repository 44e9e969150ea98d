"""Images: procedural photos of latent objects, image files in and out, and augmentations."""
