import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Runs batch work (building a training set, reading a view's whole history, summarising a view
/// for a page) on threads of its own that the kernel schedules behind the server's.
///
/// `offloaded` keeps long work off the event loops, but on a small machine it still takes the
/// CPU from them: online lookups at 10,000/s had p99 15–80 ms while training sets were built
/// back to back on the same two cores. Batch threads run ten nice levels below the process
/// (about a tenth of the CPU share when both want it), so serving gets the CPU first and a
/// training set takes longer only while the machine is busy. Work that a writer or a request
/// waits on (ingestion, the online cache's refresh) stays with `offloaded`: a low-priority
/// thread holding SQLite's write lock would hold up everything behind it.
public enum BatchWork {
    /// Niceness added to the process's own for batch threads.
    public static let niceness: Int32 = 10

    /// As many threads as cores: a training set's join is CPU-bound, and more threads would only
    /// hold more of SQLite's reader connections.
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount))
        pool.start()
        return pool
    }()

    /// Runs `work` on a batch thread and returns its result.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive {
            lowerCallingThread()
            return try work()
        }
    }

    /// The calling thread's niceness (Linux keeps it per thread).
    public static func callingThreadNiceness() -> Int32 { niceness(of: 0) }

    /// A thread's niceness by id; 0 is the calling thread, the process id its main thread.
    private static func niceness(of thread: id_t) -> Int32 {
        #if os(Linux)
            return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread)
        #else
            return getpriority(PRIO_PROCESS, thread)
        #endif
    }

    /// Sets the calling thread ten levels below the process (the main thread, whose id is the
    /// process id): derived from the process each time, so repeating it never lowers further.
    /// Lowering a priority needs no privilege; a failure leaves the thread as it was.
    private static func lowerCallingThread() {
        #if os(Linux)
            let target = min(19, niceness(of: id_t(getpid())) + niceness)
            if callingThreadNiceness() < target { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, target) }
        #endif
    }
}
