"""Loaders that turn public dataset layouts into suite manifests (validated like any manifest).

Each module has `to_manifest(root, **options) -> (manifest dict, file named in errors, base dir)`.
"""
