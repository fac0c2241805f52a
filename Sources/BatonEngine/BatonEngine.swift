/// BatonEngine owns orchestration: loading and watching pipeline files, creating runs for
/// schedules, manual triggers and backfills, and driving every run's state machine, handing
/// ready tasks to worker slots the moment their upstreams finish.
enum BatonEngineModule {}
