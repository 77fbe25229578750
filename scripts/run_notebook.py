#!/usr/bin/env python3
"""Executes a notebook top to bottom (nbclient) and writes the executed copy.

usage: run_notebook.py NOTEBOOK OUT   (ARCHIVE_DIR and PLOT_OUT pass through)
"""
import sys

import nbformat
from nbclient import NotebookClient

src, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(src, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3").execute()
nbformat.write(nb, out)
print(f"executed {src} -> {out} ({len(nb.cells)} cells)")
