"""TF-Serving-compatible model server, evaluation runner and clients."""
