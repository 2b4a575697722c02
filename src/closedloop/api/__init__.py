"""HTTP adapters: the A2I runtime, the SageMaker control plane and the worker API."""
