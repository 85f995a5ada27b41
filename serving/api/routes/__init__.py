"""API routes, one module per resource; each exports ``router``."""
