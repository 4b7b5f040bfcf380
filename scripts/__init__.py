"""Maintenance tools, run from the repository root as modules: `python -m scripts.make_images`.

`jupyterlab_browser` drives JupyterLab in headless Chromium (the browser tests and the README's screenshot);
`terminal_picture` pictures a full-screen terminal program (the README's `wandb leet`).
"""
