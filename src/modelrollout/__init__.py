"""modelrollout: evaluate, canary and promote (or roll back) ML model versions on Kubernetes.

Components live in namespaced subpackages so that nothing here can shadow the
standard library (the stdlib module ``operator`` in particular):

- ``modelrollout.core``      pure rollout logic: gates, decisions, resource builders
- ``modelrollout.serving``   TF-Serving-compatible model server, evaluation runner, clients
- ``modelrollout.operator``  kopf operator: thin handlers over ``core``
- ``modelrollout.cluster``   local Kubernetes control plane and node agent for tests and demo
"""

__version__ = "0.1.0"
