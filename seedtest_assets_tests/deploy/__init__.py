"""Validation of ``deploy/``: image, Helm values, Kubernetes manifests, pod sizes."""
