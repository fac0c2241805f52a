import BatonCore
import BatonDeploy
import BatonFeatures
import BatonRegistry
import BatonStore
import BatonWorker
import DequeModule
import Foundation
import Logging

/// Settings of one engine process.
public struct EngineConfiguration: Sendable {
    public var pipelinesDirectory: String
    /// Logs and scratch files live here (the database may live elsewhere).
    public var dataDirectory: String
    /// Tasks that may run at once in this process.
    public var slots: Int
    /// At most this many missed intervals are created per pipeline when catching up.
    public var maxCatchupRuns: Int
    /// How often the store is asked whether another process (the CLI) changed it, where the
    /// store gives no hints of such writes (a SQLite bell that cannot be watched or was
    /// deleted). A cheap counter read.
    public var externalCheckInterval: Duration
    /// The same check's interval where the store announces other processes' writes (see
    /// `Store.externalChangeHints`): then the poll only covers a missed announcement.
    public var externalCheckSafetyNet: Duration
    /// How often the pipelines folder is rescanned when no file event arrived.
    public var rescanInterval: Duration
    /// Watch files through inotify: the pipelines folder, and the database's change bell where
    /// the store has one (on PostgreSQL: a connection listening for other processes' changes).
    /// Without, both are only polled (tests that run many engines in one process turn it off:
    /// each watch is a descriptor and a thread or a connection).
    public var watchFiles: Bool
    public var schedulerEnabled: Bool
    /// How long a worker's claim on an attempt holds without a heartbeat; after that the
    /// attempt is declared lost and retried per its policy.
    public var leaseSeconds: Double
    /// This process's own worker: its id in claims, and the queues its slots serve.
    public var workerID: String
    public var queues: [String]
    /// Slot limits of named pools (`pool:` in tasks), across all workers.
    public var pools: [String: Int]
    /// Where the registry's artifacts are, so templates can name a model version's files.
    public var artifactRoot: String?

    public init(
        pipelinesDirectory: String, dataDirectory: String, slots: Int = ProcessInfo.processInfo.activeProcessorCount,
        maxCatchupRuns: Int = 50, externalCheckInterval: Duration = .milliseconds(200),
        externalCheckSafetyNet: Duration = .seconds(2),
        rescanInterval: Duration = .seconds(10), watchFiles: Bool = true, schedulerEnabled: Bool = true,
        leaseSeconds: Double = 30, workerID: String = "local", queues: [String] = [TaskSpec.defaultQueue],
        pools: [String: Int] = [:], artifactRoot: String? = nil
    ) {
        self.artifactRoot = artifactRoot
        self.pipelinesDirectory = pipelinesDirectory
        self.dataDirectory = dataDirectory
        self.slots = max(0, slots)
        self.leaseSeconds = leaseSeconds
        self.workerID = workerID
        self.queues = queues
        self.pools = pools
        self.maxCatchupRuns = maxCatchupRuns
        self.externalCheckInterval = externalCheckInterval
        self.externalCheckSafetyNet = externalCheckSafetyNet
        self.rescanInterval = rescanInterval
        self.watchFiles = watchFiles
        self.schedulerEnabled = schedulerEnabled
    }
}

/// Identifies one task instance.
struct TaskKey: Hashable, Sendable {
    var runID: Int64
    var task: String
}

/// Drives runs: creates them on schedule, starts each task the moment its upstreams allow,
/// records every transition in the store before acting on it, and recovers after a crash.
///
/// Nothing here polls for task completion: a finished process resumes the engine directly,
/// which decides the downstream tasks and starts them in the same turn.
public actor Engine {
    enum TimerAction: Sendable {
        case schedulerTick(generation: Int)
        case leaseCheck
        case retry(TaskKey)
        case slaCheck(generation: Int)
        case webhook(url: URL, body: String)
    }

    /// An attempt about to enter the work queue, with the task transition that goes with it.
    struct Dispatch: Sendable {
        var key: TaskKey
        var changes: [StoreChange]
        var attempt: AttemptRecord
        var checksContracts: Bool
        /// Set when the task's templates read registry versions: rendered in `dispatch`, after
        /// they are looked up.
        var launch: TaskLaunch?
        var models: [(model: String, alias: String)] = []
    }

    enum WorkItem: Sendable {
        /// Check data contracts, then commit the attempts to the work queue.
        case dispatch([Dispatch])
        /// Commit the attempt's start and record it as failed without a process.
        case failBeforeStart(changes: [StoreChange], key: TaskKey, attempt: Int, logPath: String, reason: String)
        case timer(delay: Double, TimerAction)
    }

    public nonisolated let store: any Store
    /// Model versions for templates (`{{ models.churn.champion.version }}`).
    nonisolated let registry: Registry
    public nonisolated let configuration: EngineConfiguration
    nonisolated let logger: Logger
    /// This process's slots; nil when it only schedules and remote workers do the work.
    nonisolated let executor: LocalExecutor?
    /// Wakes remote workers' long polls when attempts are queued.
    public nonisolated let workSignal = WorkSignal()
    nonisolated let clock: @Sendable () -> Date
    nonisolated let workStream: AsyncStream<WorkItem>
    nonisolated let work: AsyncStream<WorkItem>.Continuation
    nonisolated let baseEnvironment: [String: String]
    nonisolated let broadcaster = EventBroadcaster()
    nonisolated let metrics = EngineMetrics()
    /// The feature store: definitions from the pipelines folder, writes, training sets, lookups.
    public nonisolated let features: FeatureHub

    var pipelines: [String: PipelineRecord] = [:]
    private(set) var folderIssues: [ValidationIssue] = []
    private var reportedIssues: Set<String> = []
    private var reportedUnsizedPools: Set<String> = []
    private var leaseChecks = 0
    var machines: [Int64: RunStateMachine] = [:]
    var runs: [Int64: RunRecord] = [:]
    private var waiting: [String: [Int64]] = [:]
    private var readyQueue: Deque<TaskKey> = []
    private var lastChangeToken: Int64?
    /// Whether the store's hints of other processes' writes still arrive (see `watchExternalChanges`).
    private var externalHintsLive = false
    private var schedulerGeneration = 0
    private var runWaiters: [Int64: [CheckedContinuation<RunState, Never>]] = [:]
    private var started = false
    /// Receives the folder's deployments and the files whose errors keep their last good ones.
    private var deploymentListener: (@Sendable ([DeploymentSpec], Set<String>) async -> Void)?
    /// Set once this engine schedules (it leads); a follower only keeps its pipelines current.
    private var leading = false
    /// The environment every task starts from: this process's, plus how tasks reach this server
    /// (set once it listens). Merged once here rather than on every launch.
    var launchEnvironment: [String: String]
    /// Datasets and teams declared in the pipelines folder's catalog files.
    var datasets: [String: DatasetSpec] = [:]
    var teams: [String: TeamSpec] = [:]
    /// The last event whose triggers were processed (mirrors the store's `events.cursor`).
    var eventCursor: Int64?
    var processingEvents = false
    var eventsPending = false
    /// Event ids that `publish` callers wait on (a count per id), the runs each such event
    /// started, and the callers waiting for the pass under way to end. Another pass may process a
    /// caller's event (a concurrent publish, a task's dataset update), so the runs are kept for
    /// the caller instead of being known only to whichever pass happened to take the event.
    var publishWaits: [String: Int] = [:]
    var publishedRuns: [String: [Int64]] = [:]
    var eventPassWaiters: [CheckedContinuation<Void, Never>] = []
    /// Tasks waiting (`on_violation: wait`) for a fresh update of a dataset.
    var datasetWaiters: [String: Set<TaskKey>] = [:]
    /// Only the latest scheduled SLA check runs; older timers are stale.
    var slaGeneration = 0
    var slaCheckRunning = false
    var slaCheckAgain = false
    /// When each dataset was first seen without any update, so a never-fed dataset misses its SLA too.
    var datasetFirstSeen: [String: Date] = [:]
    /// When each queued task became ready, for the scheduling-delay metric.
    private var readySince: [TaskKey: ContinuousClock.Instant] = [:]

    public init(
        store: any Store, configuration: EngineConfiguration, logger: Logger = Logger(label: "baton.engine"),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.baseEnvironment = environment
        self.registry = Registry(store: store, artifactRoot: configuration.artifactRoot ?? configuration.dataDirectory + "/artifacts")
        self.launchEnvironment = environment
        self.features = FeatureHub(store: store, logger: logger, clock: clock)
        (workStream, work) = AsyncStream.makeStream(of: WorkItem.self)
        executor =
            configuration.slots > 0
            ? LocalExecutor(
                store: store, workerID: configuration.workerID, slots: configuration.slots, queues: configuration.queues,
                leaseSeconds: configuration.leaseSeconds, baseEnvironment: environment, metrics: metrics,
                logger: logger, clock: clock)
            : nil
    }

    // MARK: - Lifecycle

    /// Recovers unfinished work, loads pipelines and runs until the calling task is cancelled.
    public func run() async throws {
        try FileManager.default.createDirectory(
            atPath: configuration.dataDirectory + "/tmp", withIntermediateDirectories: true)
        leading = true
        features.setListener { [weak self] in await self?.featuresWritten() }
        metrics.record(slots: configuration.slots)
        // Read the change counter before recovering, so a run another process writes from now
        // on is noticed by the first check. Read after recover() and the pipeline load, a run
        // written in between was neither recovered nor noticed, and stayed queued.
        lastChangeToken = try? await store.externalChangeToken()
        try await recover()
        await reloadPipelines()
        started = true
        // Events stored but not yet acted on (a crash between the two) start their runs now.
        await processEvents()
        await checkSLAs(generation: slaGeneration)
        await executor?.setPools(configuration.pools)
        pump()
        work.yield(.timer(delay: leaseCheckInterval, .leaseCheck))
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watchExternalChanges() }
            if configuration.watchFiles { group.addTask { await self.watchPipelineFolder() } }
            if let executor {
                group.addTask {
                    await executor.run(
                        claimed: { attempts in await self.attemptsClaimed(attempts) },
                        report: { attempt in await self.attemptReported(attempt) })
                }
            }
            for await item in workStream {
                switch item {
                case .dispatch(let batch):
                    group.addTask { await self.dispatch(batch) }
                case .failBeforeStart(let changes, let key, let attempt, let logPath, let reason):
                    group.addTask {
                        await self.failBeforeStart(changes, key: key, attempt: attempt, logPath: logPath, reason: reason)
                    }
                case .timer(let delay, let action):
                    group.addTask {
                        if delay > 0 { try? await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
                        guard !Task.isCancelled else { return }
                        await self.fire(action)
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Keeps the pipelines and catalog current for the API and UI of a server that does not
    /// lead (another replica schedules), until the calling task is cancelled.
    public func follow() async {
        await reloadPipelines()
        guard configuration.watchFiles else {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            return
        }
        await watchPipelineFolder()
    }

    /// Finishes work that a previous process left behind: attempts that were running are
    /// declared lost (their leftover processes killed) and retried per policy; every
    /// unfinished run continues from its stored state.
    func recover() async throws {
        let open = try await store.openAttempts()
        let openByRun = Dictionary(grouping: open, by: \.runID)
        for run in try await store.unfinishedRuns() {
            let instances = try await store.taskInstances(runID: run.id)
            admitToCache(run, instances: instances, openAttempts: openByRun[run.id] ?? [])
        }
        // Attempts whose end a worker reported but the previous engine never applied.
        for attempt in try await store.unappliedAttempts() { await attemptReported(attempt) }
        // Workers could not renew their leases while no engine led (a leader change): give every
        // running attempt a fresh lease, so only workers that stay silent are declared lost.
        let renewUntil = clock().addingTimeInterval(configuration.leaseSeconds)
        for (worker, attempts) in Dictionary(grouping: open.filter { $0.state == .running }, by: { $0.workerID ?? "" })
        where !worker.isEmpty && worker != configuration.workerID {
            _ = try? await store.renewLeases(workerID: worker, attempts: attempts.map(\.key), until: renewUntil)
        }
        // This process's own slots died with the previous process: those attempts are lost now.
        // Remote workers' attempts keep running; their leases tell if they are gone.
        for attempt in open where attempt.state == .running && (attempt.workerID ?? configuration.workerID) == configuration.workerID {
            if let pid = attempt.pid, let ticks = attempt.processStartTicks, ProcessGroup.startTicks(of: pid) == ticks {
                ProcessGroup.killNow(pid)
            }
            await declareLost(
                attempt, reason: "attempt \(attempt.attempt) was lost: the Baton process running it stopped before it finished")
        }
        for runID in machines.keys.sorted() where machines[runID]?.state == .running {
            let effects = handle(.resume, runID: runID) ?? []
            try await commit(storeChanges(for: effects, runID: runID))
            await perform(effects, runID: runID)
            for instance in try await store.taskInstances(runID: runID) where instance.state == .upForRetry {
                let delay = max(0, (instance.retryAt ?? clock()).timeIntervalSince(clock()))
                work.yield(.timer(delay: delay, .retry(TaskKey(runID: runID, task: instance.task))))
            }
        }
        for pipeline in Set(machines.values.filter { $0.state == .queued }.map(\.spec.name)) {
            await activateWaiting(pipeline: pipeline)
        }
    }

    // MARK: - Public operations

    /// Sets variables every task gets from now on, such as `BATON_SERVER` and `BATON_TOKEN`.
    public func setTaskEnvironment(_ variables: [String: String]) async {
        launchEnvironment = baseEnvironment.merging(variables) { _, new in new }
        await executor?.setBaseEnvironment(launchEnvironment)
    }

    /// Live run and task state changes. Each subscriber has a bounded buffer.
    public nonisolated func events() -> AsyncStream<EngineEvent> { broadcaster.subscribe() }

    /// Commits changes, timing the store for the latency metric.
    func commit(_ changes: [StoreChange]) async throws {
        guard !changes.isEmpty else { return }
        let start = ContinuousClock.now
        try await store.commit(changes)
        metrics.record(storeCommit: ContinuousClock.now - start)
    }

    /// Pauses or resumes scheduling of a pipeline; running runs continue.
    public func setPaused(_ paused: Bool, pipeline name: String) async throws {
        let stored = try await store.pipeline(named: name)
        guard pipelines[name] != nil || stored != nil else {
            throw RunRequestError("unknown pipeline '\(name)'")
        }
        try await store.setPaused(paused, pipeline: name)
        pipelines[name]?.paused = paused
        if !paused, configuration.schedulerEnabled {
            schedulerGeneration += 1
            await schedulerTick(generation: schedulerGeneration)
        }
    }

    /// Runs an ended run's failed, upstream-failed and cancelled tasks again (or the named
    /// ones), with a fresh retry budget. Returns false when there is nothing to clear.
    @discardableResult
    public func clear(runID: Int64, tasks names: [String]? = nil) async throws -> Bool {
        guard machines[runID] == nil else {
            throw RunRequestError("run \(runID) is still \(machines[runID]?.state.rawValue ?? "active"); cancel it or wait for it to end first")
        }
        // A cancelled attempt may still be exiting; its end must not be taken for the new attempt's.
        if let executor, await executor.isRunning(runID: runID) {
            throw RunRequestError("run \(runID) still has a task process exiting; retry in a moment")
        }
        guard let run = try await store.run(id: runID) else { throw RunRequestError("no run \(runID)") }
        if let names {
            for name in names where run.spec.task(named: name) == nil {
                throw RunRequestError("run \(runID) of \(run.pipeline) has no task '\(name)'")
            }
        }
        let instances = try await store.taskInstances(runID: runID)
        admitToCache(run, instances: instances)
        waiting[run.pipeline]?.removeAll { $0 == runID }
        guard let effects = handle(.clear(tasks: names), runID: runID), !effects.isEmpty else {
            machines[runID] = nil
            runs[runID] = nil
            return false
        }
        runs[runID]?.state = .running
        runs[runID]?.startedAt = clock()
        try await commit([.runCleared(runID: runID)] + storeChanges(for: effects, runID: runID))
        logger.info("cleared run \(runID) of \(run.pipeline) for another try")
        await perform(effects, runID: runID)
        return true
    }

    /// Creates a manual run and starts it as soon as `max_active_runs` allows.
    public func trigger(pipeline name: String, params: [String: JSONValue] = [:]) async throws -> RunRecord {
        guard let record = pipelines[name] else {
            let fileStem = { (path: String) in ((path as NSString).lastPathComponent as NSString).deletingPathExtension }
            if let problem = folderIssues.first(where: { $0.severity == .error && fileStem($0.file) == name }) {
                throw RunRequestError(
                    "pipeline '\(name)' is not loaded because its file has errors:\n\(problem)", kind: .unknownPipeline)
            }
            throw RunRequestError(
                "unknown pipeline '\(name)'" + (Suggest.closest(to: name, in: pipelines.keys).map { "; did you mean '\($0)'?" } ?? ""),
                kind: .unknownPipeline)
        }
        let run = try RunFactory.manual(record.spec, params: params, now: clock())
        let (stored, created) = try await store.createRun(run)
        if created { await admit(stored) }
        return stored
    }

    /// Waits until the run reaches a terminal state.
    public func waitUntilFinished(runID: Int64) async throws -> RunState {
        if machines[runID] == nil {
            if let run = try await store.run(id: runID), run.state.isTerminal { return run.state }
        }
        return await withCheckedContinuation { continuation in
            runWaiters[runID, default: []].append(continuation)
        }
    }

    /// Requests cancellation of a run; running attempts are stopped.
    public func cancel(runID: Int64, reason: String = "cancelled by request") async {
        guard let effects = handle(.cancel(reason: reason), runID: runID), let pipeline = runs[runID]?.pipeline else {
            return
        }
        waiting[pipeline]?.removeAll { $0 == runID }
        do {
            try await commit(storeChanges(for: effects, runID: runID))
        } catch {
            logger.error("could not record the cancellation of run \(runID): \(error)")
        }
        await perform(effects, runID: runID)
    }

    public func loadedPipelines() -> [PipelineRecord] { pipelines.values.sorted { $0.name < $1.name } }
    public func issues() -> [ValidationIssue] { folderIssues }
    public func isRunning() -> Bool { started }
    public func busySlotCount() async -> Int { await executor?.busyCount ?? 0 }
    public func queuedTaskCount() -> Int { readyQueue.count }

    /// Hands the deployments of every folder reload to the deployment manager.
    public func setDeploymentListener(_ listener: @escaping @Sendable ([DeploymentSpec], Set<String>) async -> Void) {
        deploymentListener = listener
    }

    // MARK: - Pipelines and scheduling

    /// Rereads the pipelines folder. A file that became invalid keeps its last good version
    /// scheduled; its errors are logged once.
    public func reloadPipelines() async {
        let folder = PipelineRepository.load(directory: configuration.pipelinesDirectory)
        folderIssues = folder.issues
        // A catalog file with errors keeps its last good declarations, like pipelines do.
        if !folder.catalog.datasets.isEmpty || folder.errors.isEmpty {
            datasets = Dictionary(folder.catalog.datasets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            teams = Dictionary(folder.catalog.teams.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        }
        // Feature definitions with errors keep their last good version too.
        if !folder.features.isEmpty || folder.errors.isEmpty { await features.update(registry: folder.features) }
        await deploymentListener?(folder.deployments, Set(folder.errors.map(\.file)))
        let currentIssues = Set(folder.issues.map(\.description))
        for issue in folder.issues where !reportedIssues.contains(issue.description) {
            if issue.severity == .error {
                logger.error("\(issue.description)")
            } else {
                logger.warning("\(issue.description)")
            }
        }
        reportedIssues = currentIssues
        // A pool without a size limits nothing: say so once per pool, where operators look.
        for loaded in folder.pipelines {
            for task in loaded.spec.tasks {
                guard let pool = task.pool, configuration.pools[pool] == nil, reportedUnsizedPools.insert(pool).inserted
                else { continue }
                logger.warning(
                    "pool \(pool) (task \(task.name) of \(loaded.spec.name)) has no size, so it limits nothing; start the server with --pool \(pool)=N")
            }
        }
        let erroredFiles = Set(folder.errors.map(\.file))
        var seen: Set<String> = []
        for loaded in folder.pipelines {
            seen.insert(loaded.spec.name)
            if let existing = pipelines[loaded.spec.name], existing.spec == loaded.spec { continue }
            do {
                let record = try await store.upsertPipeline(
                    name: loaded.spec.name, file: PipelineRepository.displayPath(loaded.file), spec: loaded.spec,
                    now: clock())
                if pipelines[loaded.spec.name] == nil {
                    logger.info(
                        "loaded pipeline \(loaded.spec.name) (\(loaded.spec.tasks.count) tasks, schedule \(loaded.spec.schedule))")
                } else {
                    logger.info("reloaded pipeline \(loaded.spec.name) from \(record.file)")
                }
                pipelines[loaded.spec.name] = record
            } catch {
                logger.error("could not store pipeline \(loaded.spec.name): \(error)")
            }
        }
        for (name, record) in pipelines where !seen.contains(name) {
            if erroredFiles.contains(record.file) || erroredFiles.contains(PipelineRepository.displayPath(record.file)) {
                continue
            }
            logger.info("pipeline \(name) is no longer in \(configuration.pipelinesDirectory); it is not scheduled any more")
            pipelines[name] = nil
        }
        if configuration.schedulerEnabled {
            schedulerGeneration += 1
            await schedulerTick(generation: schedulerGeneration)
        }
    }

    func schedulerTick(generation: Int) async {
        guard generation == schedulerGeneration, configuration.schedulerEnabled, leading else { return }
        let now = clock()
        var nextWake = now.addingTimeInterval(60)
        for name in pipelines.keys.sorted() {
            guard let record = pipelines[name], !record.paused else { continue }
            let spec = record.spec
            switch spec.schedule {
            case .none:
                continue
            case .once:
                guard record.lastScheduledEnd == nil else { continue }
                await createScheduledRun(RunFactory.once(spec, firstSeen: record.firstSeen, now: now))
                await markScheduled(name, end: record.firstSeen)
            case .cron(let expression):
                guard let cron = try? CronSchedule.parse(expression), let zone = TimeZone(identifier: spec.timezone)
                else { continue }
                let plan = IntervalPlanner.due(
                    cron, in: zone, catchup: spec.catchup, startDate: spec.startDate,
                    lastScheduledEnd: record.lastScheduledEnd, now: now, maxCatchup: configuration.maxCatchupRuns)
                if plan.skippedOlder {
                    logger.warning(
                        "pipeline \(name): more than \(configuration.maxCatchupRuns) missed intervals; creating the newest \(configuration.maxCatchupRuns) (raise --max-catchup or use `baton backfill` for older ones)")
                }
                for interval in plan.intervals {
                    await createScheduledRun(RunFactory.scheduled(spec, interval: interval, now: now))
                }
                if let last = plan.intervals.last { await markScheduled(name, end: last.end) }
                if let next = cron.nextFire(after: now, in: zone), next < nextWake { nextWake = next }
            }
        }
        let delay = max(0.001, nextWake.timeIntervalSince(clock()))
        work.yield(.timer(delay: delay, .schedulerTick(generation: generation)))
    }

    private func markScheduled(_ name: String, end: Date) async {
        do {
            try await store.setLastScheduledEnd(end, pipeline: name)
            if var record = pipelines[name] {
                record.lastScheduledEnd = max(record.lastScheduledEnd ?? end, end)
                pipelines[name] = record
            }
        } catch {
            logger.error("could not record the schedule of \(name): \(error)")
        }
    }

    private func createScheduledRun(_ run: RunRecord) async {
        do {
            let (stored, created) = try await store.createRun(run)
            if created {
                logger.info("scheduled run \(stored.id) of \(stored.pipeline) for \(DataInterval.iso(stored.logicalDate))")
                await admit(stored)
            }
        } catch {
            logger.error("could not create a run of \(run.pipeline): \(error)")
        }
    }

    // MARK: - Runs

    /// Caches a run. A task with an open attempt (queued for a worker or running) counts as
    /// running in memory, so the attempt's report, whenever it comes, applies to it.
    private func admitToCache(_ run: RunRecord, instances: [TaskInstanceRecord], openAttempts: [AttemptRecord] = []) {
        var progress: [String: TaskProgress] = [:]
        for instance in instances { progress[instance.task] = instance.progress }
        for attempt in openAttempts where progress[attempt.task]?.attempts == attempt.attempt {
            if let state = progress[attempt.task]?.state, state == .queued || state == .running {
                progress[attempt.task]?.state = .running
            }
        }
        runs[run.id] = run
        machines[run.id] = RunStateMachine(
            spec: run.spec, params: run.params, variables: TaskLaunch.variables(run: run, task: nil, attempt: nil),
            state: run.state, tasks: progress)
        if run.state == .queued, !(waiting[run.pipeline]?.contains(run.id) ?? false) {
            waiting[run.pipeline, default: []].append(run.id)
        }
    }

    /// Takes a run that exists in the store into the engine.
    func admit(_ run: RunRecord) async {
        guard machines[run.id] == nil else { return }
        admitToCache(run, instances: [])
        if run.cancelRequested {
            await cancel(runID: run.id)
            return
        }
        await activateWaiting(pipeline: run.pipeline)
    }

    /// Starts queued runs of a pipeline while its `max_active_runs` allows, oldest logical date first.
    private func activateWaiting(pipeline: String) async {
        guard var queue = waiting[pipeline], !queue.isEmpty else { return }
        queue.sort { (runs[$0]?.logicalDate ?? .distantPast, $0) < (runs[$1]?.logicalDate ?? .distantPast, $1) }
        waiting[pipeline] = queue
        while let next = waiting[pipeline]?.first {
            let limit = pipelines[pipeline]?.spec.maxActiveRuns ?? runs[next]?.spec.maxActiveRuns ?? 16
            let active = machines.values.filter { $0.spec.name == pipeline && $0.state == .running }.count
            guard active < limit else { return }
            waiting[pipeline]?.removeFirst()
            guard let effects = handle(.start, runID: next) else { continue }
            do {
                try await commit(storeChanges(for: effects, runID: next))
            } catch {
                logger.error("could not start run \(next): \(error)")
                continue
            }
            await perform(effects, runID: next)
        }
    }

    private func runFinished(_ runID: Int64, state: RunState) async {
        guard let run = runs[runID] else { return }
        let elapsed = clock().timeIntervalSince(run.startedAt ?? run.createdAt)
        let message = "run \(runID) of \(run.pipeline) \(state == .success ? "succeeded" : state.rawValue)"
        if state == .success {
            logger.info("\(message)", metadata: ["run_id": "\(runID)", "seconds": "\(String(format: "%.2f", elapsed))"])
        } else {
            logger.warning("\(message)", metadata: ["run_id": "\(runID)"])
        }
        metrics.runFinished(pipeline: run.pipeline, owner: run.owner, state: state.rawValue, seconds: elapsed)
        // The shared dashboard's series: every pipeline reports its duration and outcome,
        // tagged with its owner, without the pipeline doing anything.
        let tags = ["pipeline": run.pipeline, "owner": run.owner ?? "", "state": state.rawValue]
        do {
            try await store.recordMetrics([
                MetricPoint(name: "pipeline.duration", tags: tags, value: elapsed, timestamp: clock()),
                MetricPoint(name: "pipeline.success", tags: tags, value: state == .success ? 1 : 0, timestamp: clock()),
            ])
        } catch {
            logger.error("could not record the metrics of run \(runID): \(error)")
        }
        machines[runID] = nil
        runs[runID] = nil
        waiting[run.pipeline]?.removeAll { $0 == runID }
        for waiter in runWaiters.removeValue(forKey: runID) ?? [] { waiter.resume(returning: state) }
        await activateWaiting(pipeline: run.pipeline)
    }

    /// Applies an event to a cached run in place. Going through a local copy would duplicate
    /// the run's task table on every event, which is quadratic for wide fan-outs.
    func handle(_ event: RunStateMachine.Event, runID: Int64) -> [RunStateMachine.Effect]? {
        guard machines[runID] != nil else { return nil }
        return machines[runID]!.handle(event)
    }

    // MARK: - Effects

    /// `runningIs`: how a task the machine calls running is stored; `.queued` when dispatching,
    /// since the store shows it queued until a worker's claim marks it running.
    func storeChanges(for effects: [RunStateMachine.Effect], runID: Int64, runningIs: TaskState = .running)
        -> [StoreChange]
    {
        let now = clock()
        var retryAt: [String: Date] = [:]
        for case .retryAfter(let task, _, let seconds) in effects { retryAt[task] = now.addingTimeInterval(seconds) }
        var changes: [StoreChange] = []
        let machine = machines[runID]
        for effect in effects {
            switch effect {
            case .runStateChanged(let state):
                changes.append(.runState(runID: runID, state: state, at: now))
            case .taskStateChanged(let task, let state, let reason):
                let progress = machine?.progress(of: task)
                changes.append(
                    .taskState(
                        runID: runID, task: task, state: state == .running ? runningIs : state,
                        attempts: progress?.attempts ?? 0,
                        interruptions: progress?.interruptions ?? 0, output: progress?.output, reason: reason,
                        retryAt: retryAt[task], at: now))
            case .enqueue, .retryAfter, .stopAttempt:
                break
            }
        }
        return changes
    }

    /// Acts on committed effects.
    func perform(_ effects: [RunStateMachine.Effect], runID: Int64) async {
        var finished: RunState?
        publish(effects, runID: runID)
        for effect in effects {
            switch effect {
            case .enqueue(let task):
                let key = TaskKey(runID: runID, task: task)
                readyQueue.append(key)
                readySince[key] = ContinuousClock.now
            case .retryAfter(let task, let attempt, let seconds):
                logger.info(
                    "task \(task) of run \(runID) will retry (attempt \(attempt)) in \(DurationText.format(seconds))")
                work.yield(.timer(delay: seconds, .retry(TaskKey(runID: runID, task: task))))
            case .stopAttempt(let task):
                if let attempt = machines[runID]?.progress(of: task)?.attempts {
                    await stopAttempt(AttemptKey(runID: runID, task: task, attempt: attempt))
                }
            case .runStateChanged(let state) where state.isTerminal:
                finished = state
            case .runStateChanged(.running):
                if let run = runs[runID] { metrics.runStarted(pipeline: run.pipeline, owner: run.owner) }
            case .runStateChanged, .taskStateChanged:
                break
            }
        }
        pump()
        if let finished { await runFinished(runID, state: finished) }
    }

    private func publish(_ effects: [RunStateMachine.Effect], runID: Int64) {
        guard broadcaster.hasSubscribers, let pipeline = runs[runID]?.pipeline else { return }
        let now = clock()
        for effect in effects {
            switch effect {
            case .runStateChanged(let state):
                broadcaster.publish(EngineEvent(kind: .run, runID: runID, pipeline: pipeline, state: state.rawValue, at: now))
            case .taskStateChanged(let task, let state, let reason):
                broadcaster.publish(
                    EngineEvent(kind: .task, runID: runID, pipeline: pipeline, task: task, state: state.rawValue, reason: reason, at: now))
            case .enqueue, .retryAfter, .stopAttempt:
                break
            }
        }
    }

    func fire(_ action: TimerAction) async {
        switch action {
        case .schedulerTick(let generation):
            await schedulerTick(generation: generation)
        case .slaCheck(let generation):
            await checkSLAs(generation: generation)
        case .webhook(let url, let body):
            await postWebhook(url, body: body)
        case .leaseCheck:
            await reapExpiredLeases()
            work.yield(.timer(delay: leaseCheckInterval, .leaseCheck))
        case .retry(let key):
            guard let effects = handle(.retryDue(task: key.task), runID: key.runID), !effects.isEmpty else { return }
            do {
                try await commit(storeChanges(for: effects, runID: key.runID))
            } catch {
                logger.error("could not record the retry of \(key.task) in run \(key.runID): \(error)")
                return
            }
            await perform(effects, runID: key.runID)
        }
    }

    // MARK: - Dispatch

    /// Hands ready tasks to the work queue. State changes happen before any suspension, so a
    /// re-entrant call sees a consistent picture; the store writes follow in one child task.
    private func pump() {
        // A cancelled caller means Baton is shutting down: queue nothing new.
        guard started, !Task.isCancelled else { return }
        var batch: [Dispatch] = []
        let now = clock()
        while let key = readyQueue.popFirst() {
            guard let run = runs[key.runID], let taskSpec = machines[key.runID]?.taskSpec(named: key.task),
                let effects = handle(.attemptStarted(task: key.task), runID: key.runID), !effects.isEmpty,
                let machine = machines[key.runID]
            else { continue }
            let attempt = machine.progress(of: key.task)?.attempts ?? 1
            let launch = TaskLaunch(
                run: run, machine: machine, task: taskSpec, attempt: attempt, dataDirectory: configuration.dataDirectory)
            let changes = storeChanges(for: effects, runID: key.runID, runningIs: .queued)
            var record = AttemptRecord(
                runID: key.runID, task: key.task, attempt: attempt, state: .queued, startedAt: now,
                logPath: launch.logPath, queue: taskSpec.queue ?? TaskSpec.defaultQueue, pool: taskSpec.pool,
                queuedAt: now)
            let models = TaskLaunch.modelReferences(taskSpec)
            if !models.isEmpty {
                batch.append(
                    Dispatch(
                        key: key, changes: changes, attempt: record, checksContracts: !taskSpec.requires.isEmpty, launch: launch,
                        models: models))
                continue
            }
            do {
                record.payload = try launch.payload(pipelinesDirectory: configuration.pipelinesDirectory)
                batch.append(Dispatch(key: key, changes: changes, attempt: record, checksContracts: !taskSpec.requires.isEmpty))
            } catch {
                record.state = .running
                work.yield(
                    .failBeforeStart(
                        changes: changes + [.attemptStarted(record)], key: key, attempt: attempt,
                        logPath: launch.logPath, reason: "\(error)"))
            }
        }
        if !batch.isEmpty { work.yield(.dispatch(batch)) }
        metrics.record(queueDepth: readyQueue.count)
    }

    /// Runs in a child task: data contracts first, then one commit puts the batch in the queue,
    /// then workers are woken. Nothing is claimable before its contracts held.
    nonisolated func dispatch(_ batch: [Dispatch]) async {
        var ready: [Dispatch] = []
        for var item in batch {
            if var launch = item.launch {
                do {
                    for reference in item.models {
                        // A missing version stays missing: rendering names it, and the attempt fails.
                        if let version = try? await registry.version(model: reference.model, alias: reference.alias) {
                            launch.models["\(reference.model).\(reference.alias)"] = version.json
                        }
                    }
                    item.attempt.payload = try launch.payload(pipelinesDirectory: configuration.pipelinesDirectory)
                } catch {
                    var started = item.attempt
                    started.state = .running
                    await failBeforeStart(
                        item.changes + [.attemptStarted(started)], key: item.key, attempt: item.attempt.attempt,
                        logPath: item.attempt.logPath, reason: "\(error)")
                    continue
                }
            }
            // Contracts are checked when the task is about to run, not when the run began: the
            // data may have become fresh (or stale) while upstream tasks ran.
            guard item.checksContracts, let task = await taskSpec(item.key) else {
                ready.append(item)
                continue
            }
            switch await checkContracts(task) {
            case .violated(let policy, let requirement, let reason):
                var started = item.attempt
                started.state = .running
                started.payload = nil
                do {
                    try await commit(item.changes + [.attemptStarted(started)])
                } catch {
                    logger.error("could not record the start of \(item.key.task) in run \(item.key.runID): \(error)")
                }
                await contractViolated(
                    item.key, attempt: item.attempt.attempt, policy: policy, requirement: requirement, reason: reason,
                    logPath: item.attempt.logPath)
            case .satisfied(let reads):
                await recordReads(item.key, reads: reads)
                ready.append(item)
            }
        }
        guard !ready.isEmpty else { return }
        do {
            try await commit(ready.flatMap { $0.changes + [.attemptStarted($0.attempt)] })
        } catch {
            for item in ready {
                logger.error("could not queue \(item.key.task) of run \(item.key.runID): \(error)")
                await finishAttempt(
                    item.key, attempt: item.attempt.attempt,
                    outcome: AttemptOutcome(status: .failedToStart("store error: \(error)"), duration: 0),
                    logPath: item.attempt.logPath)
            }
            return
        }
        executor?.wake()
        workSignal.notify()
    }

    func taskSpec(_ key: TaskKey) -> TaskSpec? { runs[key.runID]?.spec.task(named: key.task) }

    func failBeforeStart(_ changes: [StoreChange], key: TaskKey, attempt: Int, logPath: String, reason: String) async {
        try? FileManager.default.createDirectory(
            atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? Data("baton: the task could not start: \(reason)\n".utf8).write(to: URL(fileURLWithPath: logPath))
        do {
            try await commit(changes)
        } catch {
            logger.error("could not record the start of \(key.task) in run \(key.runID): \(error)")
        }
        await finishAttempt(
            key, attempt: attempt,
            outcome: AttemptOutcome(status: .failedToStart(reason), output: nil, exitCode: nil, duration: 0),
            logPath: logPath)
    }

    /// Stops an attempt the engine gave up on (its run was cancelled): this process's own at
    /// once; a queued or remote one by ending it in the store, which its worker learns at its
    /// next heartbeat (the lease is no longer its own), and stops it.
    func stopAttempt(_ key: AttemptKey) async {
        if let executor, await executor.stop(key) { return }
        let result = AttemptResult(state: .cancelled, reason: "stopped: its run was cancelled", at: clock())
        do {
            _ = try await store.finishAttempt(key, workerID: nil, result: result)
        } catch {
            logger.error("could not record the stop of \(key): \(error)")
        }
    }

    /// Tells live subscribers (the API's event stream, the UI) that workers started attempts.
    public func attemptsClaimed(_ attempts: [AttemptRecord]) {
        guard broadcaster.hasSubscribers else { return }
        let now = clock()
        for attempt in attempts {
            guard let pipeline = runs[attempt.runID]?.pipeline else { continue }
            broadcaster.publish(
                EngineEvent(
                    kind: .task, runID: attempt.runID, pipeline: pipeline, task: attempt.task,
                    state: TaskState.running.rawValue, reason: nil, at: now))
        }
    }

    /// Applies the end of an attempt that a worker reported (already recorded in the store),
    /// once: a report for an attempt the engine no longer waits for is ignored.
    public func attemptReported(_ attempt: AttemptRecord) async {
        let key = TaskKey(runID: attempt.runID, task: attempt.task)
        // A finished attempt may free a pool slot that queued attempts wait for.
        if attempt.pool != nil {
            executor?.wake()
            workSignal.notify()
        }
        guard let progress = machines[attempt.runID]?.progress(of: attempt.task), progress.state == .running,
            progress.attempts == attempt.attempt, !attempt.state.isOpen
        else { return }
        let seconds = (attempt.endedAt ?? clock()).timeIntervalSince(attempt.startedAt)
        if let run = runs[key.runID] {
            metrics.taskFinished(
                pipeline: run.pipeline, owner: run.owner, state: attempt.state == .success ? "success" : "failed",
                seconds: seconds)
        }
        if let queuedAt = attempt.queuedAt {
            metrics.record(schedulingDelay: .milliseconds(Int64(max(0, attempt.startedAt.timeIntervalSince(queuedAt)) * 1000)))
        }
        let event: RunStateMachine.Event
        switch attempt.state {
        case .success: event = .attemptSucceeded(task: key.task, output: attempt.output)
        case .interrupted: event = .attemptInterrupted(task: key.task, reason: attempt.reason ?? "interrupted")
        default: event = .attemptFailed(task: key.task, reason: attempt.reason ?? attempt.state.rawValue)
        }
        let quiet = attempt.state == .success || attempt.state == .interrupted || attempt.state == .cancelled
        await conclude(
            key, attempt: attempt.attempt, event: event, changes: [], succeeded: attempt.state == .success,
            output: attempt.output, warning: quiet ? nil : (attempt.reason ?? attempt.state.rawValue),
            logTail: quiet ? nil : await logTail(attempt))
    }

    /// Ends an attempt whose worker is gone, and retries the task per its policy.
    func declareLost(_ attempt: AttemptRecord, reason: String) async {
        let result = AttemptResult(state: .lost, reason: reason, at: clock())
        do {
            guard try await store.finishAttempt(attempt.key, workerID: attempt.workerID, result: result) else { return }
        } catch {
            logger.error("could not record the loss of \(attempt.key): \(error)")
            return
        }
        await attemptReported(attempt.ended(with: result))
    }

    var leaseCheckInterval: Double { max(0.2, min(configuration.leaseSeconds / 2, 10)) }

    /// The safety net for workers that died: their leases ran out.
    func reapExpiredLeases() async {
        do {
            for attempt in try await store.expiredAttempts(now: clock()) {
                let worker = attempt.workerID ?? "unknown"
                await declareLost(
                    attempt,
                    reason:
                        "attempt \(attempt.attempt) was lost: worker \(worker) stopped renewing its lease (expired \(Self.format(attempt.leaseExpires ?? clock())))"
                )
            }
            // Reports are applied as they arrive; recorded-but-unapplied ones only follow a crash or
            // a leader change, which recover() handles. This net is for the rest, and rarely needed.
            leaseChecks += 1
            if leaseChecks % 10 == 0 {
                for attempt in try await store.unappliedAttempts() { await attemptReported(attempt) }
            }
        } catch {
            logger.error("could not check the leases of running tasks: \(error)")
        }
    }

    /// Records an attempt's end that the engine itself decided (it could not start, or a data
    /// contract stopped it), together with its task's transition.
    func finishAttempt(
        _ key: TaskKey, attempt: Int, outcome: AttemptOutcome, contract: ContractOutcome? = nil, logPath: String
    ) async {
        var attemptState = outcome.result(at: clock()).state
        var event: RunStateMachine.Event =
            outcome.succeeded
            ? .attemptSucceeded(task: key.task, output: outcome.output)
            : .attemptFailed(task: key.task, reason: outcome.reason ?? "failed")
        if let contract {
            attemptState = contract.attemptState
            event = contract.event
        }
        let reason = contract?.reason ?? outcome.reason
        let changes: [StoreChange] = [
            .attemptFinished(
                runID: key.runID, task: key.task, attempt: attempt, state: attemptState, exitCode: outcome.exitCode,
                reason: reason, at: clock())
        ]
        await conclude(
            key, attempt: attempt, event: event, changes: changes, succeeded: false, output: nil,
            warning: contract == nil ? reason : nil, logTail: contract == nil ? Self.lastLogLine(logPath) : nil)
    }

    /// Applies an attempt's end to its run and commits it with `changes` in one transaction.
    private func conclude(
        _ key: TaskKey, attempt: Int, event: RunStateMachine.Event, changes: [StoreChange], succeeded: Bool,
        output: JSONValue?, warning: String?, logTail: String?
    ) async {
        var changes = changes
        var effects: [RunStateMachine.Effect] = []
        if let applied = handle(event, runID: key.runID) {
            effects = applied
            changes += storeChanges(for: effects, runID: key.runID)
        }
        // A producing task's dataset updates commit with its success, so consumers never see
        // one without the other.
        var produced = false
        if succeeded, let run = runs[key.runID], let taskSpec = run.spec.task(named: key.task), !taskSpec.produces.isEmpty {
            changes += datasetChanges(run: run, task: taskSpec, output: output)
            produced = true
        }
        if let warning {
            var message = "task \(key.task) of run \(key.runID) attempt \(attempt) \(warning)"
            if let logTail { message += ": \(logTail)" }
            logger.warning("\(message)", metadata: ["run_id": "\(key.runID)", "task": "\(key.task)"])
        }
        do {
            try await commit(changes)
        } catch {
            logger.error("could not record the end of \(key.task) in run \(key.runID): \(error)")
        }
        await perform(effects, runID: key.runID)
        if produced { await processEvents() }
    }

    /// The last line of an attempt's log, from its file here or the copy a remote worker sent.
    nonisolated func logTail(_ attempt: AttemptRecord) async -> String? {
        if let line = Self.lastLogLine(attempt.logPath) { return line }
        guard let data = try? await store.attemptLog(attempt.key, from: 0, limit: 16 * 1024 * 1024) else { return nil }
        return Self.lastLine(of: data.suffix(2048))
    }

    /// The last non-empty line of a failed attempt's log, so the console says why at a glance.
    static func lastLogLine(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 2048 ? size - 2048 : 0)
        return lastLine(of: handle.readDataToEndOfFile())
    }

    static func lastLine(of data: Data) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).last(where: { !$0.allSatisfy(\.isWhitespace) }) else {
            return nil
        }
        return String(line.prefix(300))
    }

    // MARK: - Watching

    /// Notices runs and cancellations that other processes (the CLI) wrote to the store: at once
    /// where the store hints at them (a SQLite database's change bell, PostgreSQL's notifications),
    /// otherwise on a poll.
    private func watchExternalChanges() async {
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let hints: AsyncStream<Void>?
        do {
            hints = configuration.watchFiles ? try store.externalChangeHints() : nil
        } catch {
            hints = nil
            logger.warning(
                "\(error); writes by baton commands are noticed by polling every \(configuration.externalCheckInterval) instead")
        }
        await withDiscardingTaskGroup { group in
            if let hints {
                externalHintsLive = true
                group.addTask {
                    for await _ in hints { wake.yield() }
                    await self.externalHintsEnded()
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: await self.externalPollInterval)
                    wake.yield()
                }
            }
            for await _ in wakes {
                guard let token = try? await store.externalChangeToken(), token != lastChangeToken else { continue }
                lastChangeToken = token
                await syncExternalChanges()
            }
            group.cancelAll()
        }
    }

    private var externalPollInterval: Duration {
        externalHintsLive ? max(configuration.externalCheckInterval, configuration.externalCheckSafetyNet) : configuration.externalCheckInterval
    }

    private func externalHintsEnded() {
        guard externalHintsLive, !Task.isCancelled else { return }
        externalHintsLive = false
        logger.warning(
            "the database's change bell (the .changes file beside it) was deleted; writes by baton commands are now noticed by polling every \(configuration.externalCheckInterval) until the server restarts")
    }

    func syncExternalChanges() async {
        do {
            for record in try await store.pipelines() {
                if var known = pipelines[record.name], known.paused != record.paused {
                    known.paused = record.paused
                    pipelines[record.name] = known
                    logger.info("pipeline \(record.name) \(record.paused ? "paused" : "unpaused")")
                }
            }
            for run in try await store.unfinishedRuns() where machines[run.id] == nil {
                let instances = try await store.taskInstances(runID: run.id)
                if run.state == .queued && instances.allSatisfy({ $0.state == .pending }) {
                    logger.info("picked up run \(run.id) of \(run.pipeline) (\(run.trigger.rawValue))")
                    await admit(run)
                }
            }
            await processEvents()
            await features.catchUp()
            for runID in try await store.cancelRequestedRunIDs() where machines[runID] != nil {
                logger.info("cancelling run \(runID) as requested")
                await cancel(runID: runID)
            }
        } catch {
            logger.error("could not read changes from the store: \(error)")
        }
    }

    private func watchPipelineFolder() async {
        let watcher = FolderWatcher(directory: configuration.pipelinesDirectory)
        defer { watcher?.stop() }
        let directory = configuration.pipelinesDirectory
        let rescanInterval = configuration.rescanInterval
        await withTaskGroup(of: Void.self) { group in
            if let watcher {
                group.addTask {
                    for await _ in watcher.changes {
                        // Editors write in several steps; let them finish before reading.
                        try? await Task.sleep(for: .milliseconds(100))
                        await self.reloadPipelines()
                    }
                }
            }
            group.addTask {
                var fingerprint = PipelineRepository.fingerprint(directory: directory)
                while !Task.isCancelled {
                    try? await Task.sleep(for: rescanInterval)
                    let current = PipelineRepository.fingerprint(directory: directory)
                    if current != fingerprint {
                        fingerprint = current
                        await self.reloadPipelines()
                    }
                }
            }
            await group.next()
            watcher?.stop()
            group.cancelAll()
        }
    }
}
