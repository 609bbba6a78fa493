"""Local Kubernetes cluster for tests and the demo: control plane from Go modules, node agent."""
