import AsyncHTTPClient
import BatonCore
import BatonGateway
import BatonStore
import Foundation
import Logging

/// Settings of the manager; the defaults suit production, tests shorten them.
public struct DeploymentConfiguration: Sendable {
    /// Replica logs and scratch files go under `DATA_DIR/deployments`.
    public var dataDirectory: String
    public var timing: SupervisorTiming
    /// The environment replicas start from (spec `env` and `BATON_*` are added).
    public var environment: [String: String]
    /// How often a deployment whose model reference did not resolve tries again.
    public var unresolvedRetry: Duration
    /// How often SLOs and drift are checked for alerts.
    public var monitorInterval: Duration = .seconds(30)

    public init(
        dataDirectory: String, timing: SupervisorTiming = SupervisorTiming(),
        environment: [String: String] = ProcessInfo.processInfo.environment, unresolvedRetry: Duration = .seconds(5)
    ) {
        self.unresolvedRetry = unresolvedRetry
        self.dataDirectory = dataDirectory
        self.timing = timing
        self.environment = environment
    }
}

/// A canary request (`POST .../canary`, `baton deploy canary`).
public struct CanaryRequest: Sendable {
    public var model: String
    /// Hold this share until someone promotes or rolls back (no steps).
    public var percent: Double?
    /// Steps instead of the spec's; ignored with `percent`.
    public var steps: [RolloutStep]?
    public var shadow: Bool
    /// An A/B test: `percent` is held (never promoted automatically) and outcomes reported as
    /// feedback are compared per variant.
    public var abTest: Bool

    public init(model: String, percent: Double? = nil, steps: [RolloutStep]? = nil, shadow: Bool = false, abTest: Bool = false) {
        self.model = model
        self.percent = percent
        self.steps = steps
        self.shadow = shadow
        self.abTest = abTest
    }
}

/// Holds the deployments and makes the running replicas and the gateway's routing match each
/// one's desired state in the store, which stays the source of truth: a restarted Baton reads
/// it and starts the stable and canary replicas again. Runs rollouts: analysis on a timer,
/// steps, automatic rollback, promote, and the manual actions, each recorded with its actor.
public actor DeploymentManager {
    struct Deployment {
        var spec: DeploymentSpec
        var source: String
        var state: DesiredState
        var revision: Int64
        var lastAnalysis: AnalysisResult?
        var lastTraffic: String?
        var analysisTask: Task<Void, Never>?
    }

    public nonisolated let router: any TrafficRouting
    let store: any Store
    let resolver: any ModelResolving
    let configuration: DeploymentConfiguration
    let logger: Logger
    let clock: @Sendable () -> Date
    let supervisor: ReplicaSupervisor
    private var deployments: [String: Deployment] = [:]
    private var serverURL: String?
    private var serverToken: String?
    private var running = false
    private var unresolvedReported: Set<String> = []
    private var pendingFolder: [DeploymentSpec]?
    /// Publishes `deployment.NAME.degraded` (the engine's events, given by `baton up`).
    var alertPublisher: AlertPublisher?
    /// The alert conditions raised and not cleared yet, per deployment.
    var activeAlerts: [String: Set<String>] = [:]
    let httpClient: HTTPClient

    public init(
        store: any Store, resolver: any ModelResolving, router: any TrafficRouting, configuration: DeploymentConfiguration,
        logger: Logger = Logger(label: "baton.deploy"), clock: @escaping @Sendable () -> Date = { Date() },
        httpClient: HTTPClient = .shared
    ) {
        self.store = store
        self.resolver = resolver
        self.router = router
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.httpClient = httpClient
        self.supervisor = ReplicaSupervisor(
            dataDirectory: configuration.dataDirectory, store: store, timing: configuration.timing, logger: logger, clock: clock,
            httpClient: httpClient)
    }

    /// How replicas reach this server (`BATON_SERVER`, and `BATON_TOKEN` when it requires
    /// tokens), known once it listens.
    public func setServerURL(_ url: String, token: String? = nil) {
        serverURL = url
        serverToken = token
    }

    // MARK: - Lifecycle

    /// Supervises until the calling task is cancelled (this server leads): reads every
    /// deployment from the store, starts the replicas of stable and canary versions and resumes
    /// rollouts. Cancelling stops all replicas; their desired state stays in the store.
    public func run() async throws {
        await supervisor.setListener { [weak self] name in await self?.replicasChanged(name) }
        let router = router
        await supervisor.setInFlight { replicaID in router.requestsInFlight(replicaID: replicaID) }
        _ = await supervisor.reapLeftovers()
        for record in try await store.deployments() {
            do {
                let spec = try DeploymentSpec.decode(record.specJSON)
                let state = try DesiredState.decode(record.stateJSON)
                if deployments[record.name] == nil {
                    deployments[record.name] = Deployment(spec: spec, source: record.source, state: state, revision: record.revision)
                } else {
                    deployments[record.name]?.state = state
                    deployments[record.name]?.revision = record.revision
                }
            } catch {
                logger.error("deployment \(record.name) in the store cannot be read (\(error)); it is not supervised")
            }
        }
        running = true
        if let folder = pendingFolder {
            pendingFolder = nil
            await applyFolder(folder, keptFiles: [])
        }
        for name in deployments.keys.sorted() { await reconcile(name) }
        let monitoring = Task { [weak self, interval = configuration.monitorInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled, let self else { return }
                await self.monitorAll()
            }
        }
        defer { monitoring.cancel() }
        do {
            // A declared deployment whose model is not registered yet starts once it is.
            while !Task.isCancelled {
                try await Task.sleep(for: configuration.unresolvedRetry)
                for (name, deployment) in deployments where deployment.state.stable == nil { await reconcile(name) }
            }
        } catch {}
        await shutdown()
    }

    func shutdown() async {
        running = false
        for name in deployments.keys {
            deployments[name]?.analysisTask?.cancel()
            deployments[name]?.analysisTask = nil
            router.setPolicy(nil, deployment: name)
        }
        await supervisor.stopAll()
    }

    // MARK: - Specs

    /// The deployments declared in the pipelines folder. Files listed in `keptFiles` had errors:
    /// their deployments keep their last good definitions.
    public func applyFolder(_ specs: [DeploymentSpec], keptFiles: Set<String>) async {
        guard running else {
            pendingFolder = specs
            return
        }
        var seen: Set<String> = []
        for spec in specs {
            seen.insert(spec.name)
            do {
                _ = try await put(spec, source: "file:\(spec.sourceFile ?? "")", actor: "baton")
            } catch {
                logger.error("deployment \(spec.name) from \(spec.sourceFile ?? "?") could not be applied: \(error)")
            }
        }
        for (name, deployment) in deployments where deployment.source.hasPrefix("file:") && !seen.contains(name) {
            let file = String(deployment.source.dropFirst("file:".count))
            guard !keptFiles.contains(file) else { continue }
            logger.info("deployment \(name) is no longer declared in the pipelines folder; its replicas stop")
            deployments[name]?.analysisTask?.cancel()
            deployments[name] = nil
            router.setPolicy(nil, deployment: name)
            for replica in await supervisor.replicas(deployment: name) {
                await supervisor.drainAndStop(replica.id, reason: "the deployment is no longer declared")
            }
        }
    }

    /// Creates or replaces a deployment's spec (`PUT /api/v1/deployments/NAME`, or a file).
    @discardableResult
    public func put(_ spec: DeploymentSpec, source: String, actor: String) async throws -> JSONValue {
        if let existing = deployments[spec.name], existing.spec == spec, existing.source == source { return await status(spec.name) }
        if source == "api", let existing = deployments[spec.name], existing.source.hasPrefix("file:") {
            // The next reload of the folder would silently undo an API change.
            throw DeploymentError.conflict(
                "deployment \(spec.name) is declared in \(existing.source.dropFirst("file:".count))",
                fix: "change it in that file, or remove it there before managing it through the API")
        }
        let record = try await store.putDeployment(name: spec.name, specJSON: spec.json(), source: source, now: clock())
        let previous = deployments[spec.name]
        let state = try DesiredState.decode(record.stateJSON)
        deployments[spec.name] = Deployment(
            spec: spec, source: source, state: state, revision: record.revision, lastAnalysis: previous?.lastAnalysis,
            lastTraffic: previous?.lastTraffic, analysisTask: previous?.analysisTask)
        try await store.recordDeploymentEvent(
            DeploymentEventRecord(
                deployment: spec.name, at: clock(), actor: actor, action: previous == nil ? "spec.created" : "spec.updated",
                reason: source == "api" ? "through the API" : "from \(source.dropFirst("file:".count))"))
        if running {
            await reconcile(spec.name)
            if let previous, previous.spec.runsDifferently(from: spec) {
                // Replicas run the old command or environment: replace them one at a time.
                let replicas = await supervisor.replicas(deployment: spec.name).map(\.id)
                Task { await self.replace(spec.name, replicas) }
            }
        }
        return await status(spec.name)
    }

    // MARK: - Reconciling

    /// Starts missing replicas of the stable and canary versions, drains the others, resumes
    /// the rollout timer and tells the gateway the routing.
    func reconcile(_ name: String) async {
        guard running, var deployment = deployments[name] else { return }
        if deployment.state.stable == nil {
            // A declared deployment runs its model as soon as the reference resolves.
            do {
                let placed = try await resolver.resolve(deployment.spec.model)
                var state = deployment.state
                state.stable = placed
                _ = try await write(
                    name, state,
                    event: event(name, actor: "baton", action: "deployed", version: placed.version,
                                 reason: "first deployment of \(deployment.spec.model) (\(placed.modelURI))"))
                unresolvedReported.remove(name)
                deployment = deployments[name] ?? deployment
            } catch let error as DeploymentError {
                if unresolvedReported.insert(name).inserted {
                    logger.warning("deployment \(name): \(error.description)")
                    _ = try? await store.recordDeploymentEvent(
                        event(name, actor: "baton", action: "model.unresolved", reason: error.description))
                }
            } catch {
                logger.error("deployment \(name): \(error)")
            }
        }
        let state = deployment.state
        var wanted: [String: ReplicaLaunch] = [:]
        for placed in [state.stable, state.canary].compactMap({ $0 }) {
            for index in 0..<deployment.spec.replicas {
                let launch = ReplicaLaunch(
                    deployment: name, version: placed, index: index, spec: deployment.spec, environment: launchEnvironment(name))
                wanted[launch.id] = launch
            }
        }
        let current = await supervisor.replicas(deployment: name)
        for launch in wanted.values.sorted(by: { $0.id < $1.id }) where !current.contains(where: { $0.id == launch.id }) {
            await supervisor.start(launch)
        }
        for replica in current where wanted[replica.id] == nil && replica.state != .draining {
            let supervisor = self.supervisor
            Task { await supervisor.drainAndStop(replica.id, reason: "version \(replica.version) no longer runs here") }
        }
        if state.rolloutOpen {
            startAnalysis(name)
        } else {
            deployments[name]?.analysisTask?.cancel()
            deployments[name]?.analysisTask = nil
        }
        await pushPolicy(name)
    }

    /// Rolling replacement after a spec change: each replica drains and stops, its successor
    /// (started with the new spec) must get healthy before the next one goes, so a deployment
    /// with two replicas or more keeps serving throughout.
    func replace(_ name: String, _ ids: [String]) async {
        for id in ids {
            guard deployments[name] != nil else { return }
            await supervisor.drainAndStop(id, reason: "the deployment's spec changed")
            await reconcile(name)
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let state = await supervisor.replicas(deployment: name).first { $0.id == id }?.state
                if state == nil || state == .healthy { break }
                try? await Task.sleep(for: configuration.timing.startingCheckInterval)
            }
        }
    }

    func launchEnvironment(_ name: String) -> [String: String] {
        var environment = configuration.environment
        if let serverURL { environment["BATON_SERVER"] = serverURL }
        if let serverToken { environment["BATON_TOKEN"] = serverToken }
        return environment
    }

    func replicasChanged(_ name: String) async { await pushPolicy(name) }

    /// Tells the gateway which healthy replicas take which share, and records traffic changes.
    func pushPolicy(_ name: String) async {
        guard let deployment = deployments[name] else {
            router.setPolicy(nil, deployment: name)
            return
        }
        let state = deployment.state
        var stable: GatewayBackend?
        if let version = state.stable?.version {
            stable = GatewayBackend(version: version, endpoints: await supervisor.endpoints(deployment: name, version: version))
        }
        var candidate: GatewayBackend?
        if let version = state.canary?.version {
            candidate = GatewayBackend(version: version, endpoints: await supervisor.endpoints(deployment: name, version: version))
        }
        let policy = TrafficPolicy(
            stable: stable, candidate: candidate, candidatePercent: candidate == nil ? 0 : state.canaryPercent, mode: state.mode,
            stickyKey: deployment.spec.sticky)
        router.setPolicy(policy, deployment: name)
        let traffic =
            "\(stable?.version ?? "-")@\(stable?.endpoints.isEmpty == false ? 1 : 0) "
            + "\(candidate?.version ?? "-")@\(candidate?.endpoints.isEmpty == false ? 1 : 0) \(policy.candidatePercent) \(state.mode.rawValue)"
        guard deployments[name]?.lastTraffic != traffic else { return }
        deployments[name]?.lastTraffic = traffic
        let canaryShare = candidate?.endpoints.isEmpty == false ? policy.candidatePercent : 0
        let stableShare = stable?.endpoints.isEmpty == false ? (state.mode == .shadow ? 100 : 100 - canaryShare) : 0
        _ = try? await store.recordDeploymentEvent(
            event(
                name, actor: "baton", action: "traffic.changed", version: candidate?.version ?? stable?.version,
                reason: "stable \(Self.percentText(stableShare)) % to v\(stable?.version ?? "-")"
                    + (candidate.map { ", canary \(Self.percentText(canaryShare)) % to v\($0.version)" } ?? "")
                    + (state.mode == .shadow ? " (shadow copies)" : ""),
                detail: .object([
                    "stable_percent": .number(stableShare), "canary_percent": .number(canaryShare), "mode": .string(state.mode.rawValue),
                    "stable_replicas": .number(Double(stable?.endpoints.count ?? 0)),
                    "canary_replicas": .number(Double(candidate?.endpoints.count ?? 0)),
                ])))
    }

    static func percentText(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    // MARK: - Writing the desired state

    func event(
        _ name: String, actor: String, action: String, version: String? = nil, reason: String? = nil, detail: JSONValue? = nil
    ) -> DeploymentEventRecord {
        DeploymentEventRecord(
            deployment: name, at: clock(), actor: actor, action: action, version: version, reason: reason,
            detailJSON: detail?.compactJSON)
    }

    /// Compare-and-set of the state with its event; another writer's change first is a conflict.
    func write(_ name: String, _ state: DesiredState, event: DeploymentEventRecord) async throws -> DesiredState {
        guard let deployment = deployments[name] else { throw DeploymentError.unknownDeployment(name) }
        guard
            let record = try await store.updateDeploymentState(
                name: name, stateJSON: state.json(), expectedRevision: deployment.revision, event: event, now: clock())
        else {
            // Re-read so the next attempt starts from what the store holds.
            if let stored = try await store.deployment(named: name) {
                deployments[name]?.state = try DesiredState.decode(stored.stateJSON)
                deployments[name]?.revision = stored.revision
            }
            throw DeploymentError.conflict(
                "deployment \(name) changed while this action was decided", fix: "look at `baton deploy status \(name)` and retry")
        }
        deployments[name]?.state = state
        deployments[name]?.revision = record.revision
        return state
    }

    func deployment(_ name: String) throws(DeploymentError) -> Deployment {
        guard let deployment = deployments[name] else { throw .unknownDeployment(name) }
        return deployment
    }

    // MARK: - Actions

    /// Starts a canary of `request.model`; the first version of a deployment becomes stable directly.
    @discardableResult
    public func canary(_ name: String, _ request: CanaryRequest, actor: String) async throws -> JSONValue {
        let deployment = try deployment(name)
        if deployment.state.rolloutOpen {
            throw DeploymentError.conflict(
                "deployment \(name) has a rollout in progress (canary v\(deployment.state.canary?.version ?? "?"))",
                fix: "promote, roll back or abort it first: baton deploy promote|rollback|abort \(name)")
        }
        if let percent = request.percent, !(percent > 0 && percent <= 100) {
            throw DeploymentError.invalidRequest(
                "percent \(percent) is not a share of traffic", field: "percent", fix: "pass a number above 0 and at most 100")
        }
        if request.abTest {
            guard request.percent != nil else {
                throw DeploymentError.invalidRequest(
                    "an A/B test needs the candidate's fixed share of traffic", field: "percent", fix: "pass --percent 50 (or another share)")
            }
            guard !request.shadow else {
                throw DeploymentError.invalidRequest(
                    "an A/B test cannot run in shadow mode: the candidate's answers must reach users to have outcomes",
                    field: "shadow", fix: "drop --shadow")
            }
        }
        let placed = try await resolver.resolve(request.model)
        var state = deployment.state
        if request.abTest, state.stable == nil {
            throw DeploymentError.conflict(
                "deployment \(name) has no stable version to compare \(placed.modelURI) with",
                fix: "deploy a first version (baton deploy canary \(name) --model REF), then start the A/B test")
        }
        guard let stable = state.stable else {
            state = DesiredState(stable: placed)
            _ = try await write(
                name, state,
                event: event(name, actor: actor, action: "deployed", version: placed.version,
                             reason: "first deployment: \(placed.modelURI) becomes stable directly"))
            await reconcile(name)
            return await status(name)
        }
        guard stable.version != placed.version else {
            throw DeploymentError.conflict(
                "\(placed.modelURI) is already the stable version of \(name)", fix: "register and pass another version")
        }
        let steps: [RolloutStep] = request.percent == nil ? (request.steps ?? deployment.spec.rollout.steps) : []
        let percent = request.percent ?? steps.first?.percent ?? (request.shadow ? 100 : 0)
        guard percent > 0 else {
            throw DeploymentError.invalidRequest(
                "deployment \(name) declares no rollout steps", field: "percent",
                fix: "pass --percent P (held until promote or rollback), or declare rollout.steps in its file")
        }
        state.canary = placed
        state.canaryPercent = percent
        state.mode = request.shadow ? .shadow : .split
        state.rolloutState = .progressing
        state.steps = steps
        state.step = 0
        state.stepStartedAt = clock()
        state.abTest = request.abTest
            ? ABTestRecord(stable: stable.version, candidate: placed.version, percent: percent, startedAt: clock()) : nil
        deployments[name]?.lastAnalysis = nil
        router.resetStats(deployment: name, version: placed.version)
        let plan = request.abTest
            ? "A/B test against v\(stable.version), \(Self.percentText(percent)) % held until promoted or rolled back"
            : steps.isEmpty
            ? "\(Self.percentText(percent)) % held until promoted or rolled back"
            : steps.map { "\(Self.percentText($0.percent)) % for \(DurationText.format($0.durationSeconds))" }.joined(separator: ", ")
        _ = try await write(
            name, state,
            event: event(name, actor: actor, action: "canary.started", version: placed.version,
                         reason: "\(placed.modelURI)\(request.shadow ? " in shadow mode" : ""): \(plan)",
                         detail: .object(["percent": .number(percent), "steps": .number(Double(steps.count)), "ab_test": .bool(request.abTest)])))
        await reconcile(name)
        return await status(name)
    }

    /// Makes the canary stable; the old stable's replicas drain.
    @discardableResult
    public func promote(_ name: String, actor: String, reason: String?) async throws -> JSONValue {
        var state = try deployment(name).state
        guard let canary = state.canary else {
            throw DeploymentError.conflict("deployment \(name) has no canary to promote", fix: "start one: baton deploy canary \(name) --model REF")
        }
        let old = state.stable?.version
        state.stable = canary
        state.canary = nil
        state.canaryPercent = 0
        state.mode = .split
        state.rolloutState = .promoted
        state.stepStartedAt = nil
        state.endABTest(at: clock())
        _ = try await write(
            name, state,
            event: event(name, actor: actor, action: "promoted", version: canary.version,
                         reason: reason ?? "v\(canary.version) replaces v\(old ?? "-") as stable"))
        await reconcile(name)
        return await status(name)
    }

    /// Sends all traffic back to stable; the canary's replicas drain and stop.
    @discardableResult
    public func rollback(_ name: String, actor: String, reason: String?, detail: JSONValue? = nil) async throws -> JSONValue {
        try await endRollout(name, as: .rolledBack, action: "rolled_back", actor: actor, reason: reason, detail: detail)
    }

    @discardableResult
    public func abort(_ name: String, actor: String, reason: String?) async throws -> JSONValue {
        try await endRollout(name, as: .aborted, action: "aborted", actor: actor, reason: reason, detail: nil)
    }

    func endRollout(_ name: String, as outcome: RolloutState, action: String, actor: String, reason: String?, detail: JSONValue?)
        async throws -> JSONValue
    {
        var state = try deployment(name).state
        guard let canary = state.canary else {
            throw DeploymentError.conflict("deployment \(name) has no canary", fix: "nothing to do: stable serves all traffic")
        }
        state.canary = nil
        state.canaryPercent = 0
        state.mode = .split
        state.rolloutState = outcome
        state.stepStartedAt = nil
        state.endABTest(at: clock())
        _ = try await write(
            name, state, event: event(name, actor: actor, action: action, version: canary.version, reason: reason, detail: detail))
        await reconcile(name)
        return await status(name)
    }

    /// Holds the current step: no progression; a failed check still rolls back.
    @discardableResult
    public func pause(_ name: String, actor: String, reason: String?) async throws -> JSONValue {
        var state = try deployment(name).state
        guard state.canary != nil, state.rolloutState == .progressing else {
            throw DeploymentError.conflict("deployment \(name) has no progressing rollout to pause", fix: "see baton deploy status \(name)")
        }
        state.rolloutState = .paused
        _ = try await write(name, state, event: event(name, actor: actor, action: "paused", version: state.canary?.version, reason: reason))
        return await status(name)
    }

    /// Continues a paused rollout; the current step's duration starts again.
    @discardableResult
    public func resume(_ name: String, actor: String, reason: String?) async throws -> JSONValue {
        var state = try deployment(name).state
        guard state.canary != nil, state.rolloutState == .paused else {
            throw DeploymentError.conflict("deployment \(name) has no paused rollout", fix: "see baton deploy status \(name)")
        }
        state.rolloutState = .progressing
        state.stepStartedAt = clock()
        _ = try await write(name, state, event: event(name, actor: actor, action: "resumed", version: state.canary?.version, reason: reason))
        return await status(name)
    }

    // MARK: - Analysis

    func startAnalysis(_ name: String) {
        guard deployments[name]?.analysisTask == nil, let interval = deployments[name]?.spec.rollout.analysis.intervalSeconds else {
            return
        }
        deployments[name]?.analysisTask = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
                guard !Task.isCancelled, let self else { return }
                await self.analyze(name)
            }
        }
    }

    /// One analysis round: compares canary with stable over the current step's window, rolls
    /// back on a failed check, moves on when the step's time passed with every check green.
    func analyze(_ name: String) async {
        guard let deployment = deployments[name], let canary = deployment.state.canary, deployment.state.rolloutOpen else { return }
        let state = deployment.state
        let since = state.stepStartedAt ?? clock()
        let stats = router.stats(deployment: name, since: since)
        let analysis = deployment.spec.rollout.analysis
        var metricValues: [Double?] = []
        for threshold in analysis.metrics {
            let points = (try? await store.metricPoints(
                name: threshold.name, tags: ["deployment": name, "version": canary.version], from: since, to: clock(), limit: 10_000))
                ?? []
            metricValues.append(points.isEmpty ? nil : points.map(\.value).reduce(0, +) / Double(points.count))
        }
        let result = CanaryAnalysis.analyze(
            analysis, canary: stats[canary.version], stable: state.stable.flatMap { stats[$0.version] }, metrics: metricValues, at: clock())
        let previousVerdict = deployments[name]?.lastAnalysis?.verdict
        deployments[name]?.lastAnalysis = result
        if let failed = result.failedCheck {
            do {
                try await rollback(
                    name, actor: "baton", reason: "analysis failed: \(failed.sentence)",
                    detail: .object(["failed": failed.json, "analysis": result.json, "step": .number(Double(state.step))]))
                logger.warning("deployment \(name): canary v\(canary.version) rolled back: \(failed.sentence)")
            } catch {
                logger.error("deployment \(name): the rollback after a failed analysis did not go through: \(error)")
            }
            return
        }
        // Each round is in the status document; the audit trail gets a verdict when it changes.
        if previousVerdict != result.verdict {
            _ = try? await store.recordDeploymentEvent(
                event(name, actor: "baton", action: "analysis.\(result.verdict.rawValue)", version: canary.version,
                      reason: result.verdict == .waiting
                        ? "waiting for \(max(1, analysis.minRequests)) requests per version (canary has \(result.canaryRequests))" : nil,
                      detail: result.json))
        }
        guard result.verdict == .passed, state.rolloutState == .progressing, state.step < state.steps.count else { return }
        let step = state.steps[state.step]
        guard clock().timeIntervalSince(since) >= step.durationSeconds else { return }
        if state.step + 1 < state.steps.count {
            var next = state
            next.step += 1
            next.canaryPercent = state.steps[next.step].percent
            next.stepStartedAt = clock()
            do {
                _ = try await write(
                    name, next,
                    event: event(name, actor: "baton", action: "step.advanced", version: canary.version,
                                 reason: "step \(state.step + 1) passed; canary now \(Self.percentText(next.canaryPercent)) %",
                                 detail: result.json))
                await pushPolicy(name)
            } catch {
                logger.error("deployment \(name): could not advance the rollout: \(error)")
            }
        } else {
            do {
                try await promote(name, actor: "baton", reason: "every step passed its analysis")
            } catch {
                logger.error("deployment \(name): could not promote: \(error)")
            }
        }
    }

    // MARK: - Reading

    public func names() -> [String] { deployments.keys.sorted() }

    /// Whether this manager runs replicas (it was started on the leading server).
    public func isSupervising() -> Bool { running }

    public func spec(_ name: String) -> DeploymentSpec? { deployments[name]?.spec }

    /// The status document of the API and `baton deploy status`.
    public func status(_ name: String) async -> JSONValue {
        guard let deployment = deployments[name] else { return .null }
        let state = deployment.state
        let replicas = await supervisor.replicas(deployment: name)
        func placed(_ version: PlacedVersion?) -> JSONValue {
            guard let version else { return .null }
            return .object([
                "version": .string(version.version), "model_uri": .string(version.modelURI),
                "model_dir": version.modelDir.map(JSONValue.string) ?? .null,
                "replicas": .array(
                    replicas.filter { $0.version == version.version }.map { replica in
                        .object([
                            "id": .string(replica.id), "port": .number(Double(replica.port)),
                            "pid": replica.pid.map { .number(Double($0)) } ?? .null, "state": .string(replica.state.rawValue),
                            "restarts": .number(Double(replica.restarts)), "log": .string(replica.logPath),
                        ])
                    }),
            ])
        }
        let canaryPercent = state.canary == nil ? 0 : state.canaryPercent
        var rollout: JSONValue = .null
        if let rolloutState = state.rolloutState {
            rollout = .object([
                "state": .string(rolloutState.rawValue), "step": .number(Double(state.step)),
                "steps": .array(state.steps.map { .object(["percent": .number($0.percent), "duration_seconds": .number($0.durationSeconds)]) }),
                "step_started_at": state.stepStartedAt.map { .string($0.formatted(.iso8601)) } ?? .null,
                "last_analysis": deployment.lastAnalysis?.json ?? .null,
            ])
        }
        return .object([
            "name": .string(name), "owner": deployment.spec.owner.map(JSONValue.string) ?? .null,
            "description": deployment.spec.description.map(JSONValue.string) ?? .null,
            "model": .string(deployment.spec.model), "source": .string(deployment.source),
            "supervised": .bool(running),
            "stable": placed(state.stable), "canary": placed(state.canary),
            "traffic": .object([
                "mode": .string(state.mode.rawValue),
                "stable_percent": .number(state.stable == nil ? 0 : (state.mode == .shadow ? 100 : 100 - canaryPercent)),
                "canary_percent": .number(canaryPercent),
            ]),
            "rollout": rollout,
            "ab_test": state.abTest.map(\.json) ?? .null,
            "stats": statsJSON(name),
        ])
    }

    /// Per-version figures since the gateway started counting.
    public func statsJSON(_ name: String) -> JSONValue {
        .object(
            router.stats(deployment: name).mapValues { snapshot in
                .object([
                    "requests": .number(Double(snapshot.requests)), "errors": .number(Double(snapshot.errors)),
                    "error_rate": .number(snapshot.errorRate), "p50_ms": .number(snapshot.p50Ms), "p99_ms": .number(snapshot.p99Ms),
                ])
            })
    }

    public func statuses() async -> [JSONValue] {
        var result: [JSONValue] = []
        for name in deployments.keys.sorted() { result.append(await status(name)) }
        return result
    }

    /// Loads deployments from the store for a server that does not supervise (it follows).
    public func refreshFromStore() async throws {
        guard !running else { return }
        for record in try await store.deployments() {
            guard let spec = try? DeploymentSpec.decode(record.specJSON), let state = try? DesiredState.decode(record.stateJSON) else {
                continue
            }
            deployments[record.name] = Deployment(
                spec: spec, source: record.source, state: state, revision: record.revision,
                lastAnalysis: deployments[record.name]?.lastAnalysis)
        }
    }

    public func events(_ name: String, limit: Int, before: Int64?) async throws -> [DeploymentEventRecord] {
        guard deployments[name] != nil else { throw DeploymentError.unknownDeployment(name) }
        return try await store.deploymentEvents(deployment: name, limit: limit, beforeID: before)
    }
}

extension DeploymentEventRecord {
    /// The audit trail's entry as the API and CLI show it.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "id": .number(Double(id)), "deployment": .string(deployment), "at": .string(at.formatted(.iso8601)),
            "actor": .string(actor), "action": .string(action),
            "version": version.map(JSONValue.string) ?? .null, "reason": reason.map(JSONValue.string) ?? .null,
        ]
        if let detailJSON, let detail = try? JSONValue.parse(Data(detailJSON.utf8)) { object["detail"] = detail }
        return .object(object)
    }
}
