/// BatonAPI owns the wire format of Baton's REST API: the JSON documents the server sends and
/// the CLI prints with `--json`, and a small client the CLI uses to talk to a running server.
enum BatonAPIModule {}
