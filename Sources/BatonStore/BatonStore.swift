/// BatonStore owns durable state: pipelines, runs, task instances and attempts behind the
/// `Store` protocol, with the embedded SQLite implementation (WAL mode, one file).
enum BatonStoreModule {}
