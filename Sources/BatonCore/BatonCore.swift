/// BatonCore owns Baton's pure domain: the pipeline model and its YAML form,
/// cron schedules with time zones, DAG validation, templates and `when`
/// conditions, and the run/task state machine. It performs no I/O beyond
/// parsing text handed to it, so every rule here is unit-testable in isolation.
enum BatonCoreModule {}
