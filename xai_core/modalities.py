"""The kinds of data, defined once. Every registry, command-line choice and page takes them from here.

A module of its own, with no dependencies, so that the command line's parser can offer the choices without
loading the data package.
"""
from typing import Literal, get_args

Modality = Literal["expression", "image", "sequence"]
MODALITIES: tuple[str, ...] = get_args(Modality)
