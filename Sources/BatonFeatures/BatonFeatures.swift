/// BatonFeatures owns the feature store's pure logic: entity, feature view and feature service
/// definitions with their YAML parser and validation, the checking and coercion of incoming
/// rows, the compact value encoding the stores keep, the point-in-time join for training sets,
/// per-feature statistics and the in-memory online cache. It does no I/O of its own: the
/// engine's `FeatureHub` ties it to a `Store`.
enum BatonFeaturesModule {}
