"""Jobs over the whole archive, the same code for the server and the `vellum` command line:
imports (model, lines, imports: the runner, poller: the server's import poller, local:
`vellum import` without a server), reprocess, verify and export."""
