"""Jobs: bulk imports (and, later, reprocessing and verification), run the same way by
the workers inside `vellum serve` and by the `vellum` command line."""
