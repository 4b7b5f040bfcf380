"""The benchmarks behind the README's speed figures: run each as `python -m benchmarks.<name>`."""
