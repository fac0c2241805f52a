/// BatonGateway owns the serving path of model deployments: it routes prediction requests to
/// healthy replicas under a traffic policy (weighted split, sticky keys, shadow copies), retries
/// a failed replica once on another, records per version requests, errors, latency, predictions
/// and sampled inputs (exported through swift-metrics as `baton_serve_*`), and provides the pure
/// statistics the deployment analysis needs (population stability index, A/B intervals). It knows
/// nothing of processes, specs or stores: BatonDeploy tells it, with `setPolicy`, where traffic goes.
enum BatonGatewayModule {}
