/// BatonDeploy owns model deployments: their specs (YAML files in the pipelines folder whose top
/// level is `deployments:`, or JSON through the API), the supervision of serving processes
/// (start, health checks, restart with backoff, drain, stop), the desired state kept in the
/// store, and rollouts: canary steps, analysis against stable with automatic rollback, promote,
/// pause, resume and abort, each recorded in the deployment's audit trail. Routing requests is
/// the gateway's (BatonGateway): this module tells it which healthy replicas take which share.
enum BatonDeployModule {}
