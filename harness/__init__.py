"""ganrm-bench's core, in rooms that import only downwards (tests/harness/test_layering.py):

    errors       what a user did wrong, said in one line (every room)
    stats        paired differences and the regression gate: numbers in, verdicts out
    store        bytes on disk: the content-addressed store, its keys and locks, assets and the hub
    plugins      the plugin API (base classes), the registry, fingerprints, the core's data sources
    runtime      what a running plugin sees: context, devices, seeds, numerics, processes, progress
    spec         benchmark specs: schema, loading (include, --set), validation, the assets a spec needs
    engine       the artifact graph: nodes, ops, the builder, evaluation, plans, costs, estimates
    diagnostics  reward-model report cards and the over-optimisation monitor
    report       run directories and everything rendered from them: tables, figures, HTML
    app          one service function per user action; the CLI and the human-study web app on top
"""
