"""The kopf operator: thin handler registration over the pure rollout core."""
