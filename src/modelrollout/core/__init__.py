"""Pure rollout logic: gates, decisions and resource builders. No I/O, no cluster."""
