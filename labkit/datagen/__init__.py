"""The project's own datasets: written or generated here, seeded and byte-for-byte reproducible.

``python -m labkit.datagen [--out DIR]`` regenerates every file under ``data/`` (see
``data/README.md``, the datasheet).
"""
