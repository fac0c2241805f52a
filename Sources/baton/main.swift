import BatonCLI
import Foundation
import NIOCore
import NIOPosix

// Swift Concurrency's jobs run on NIO's event loops instead of a pool of their own, so a request's
// handler resumes on the thread that read its bytes instead of hopping to another one and back:
// that hop is most of what the server adds to a small request's latency under load. Installed
// before the first task starts, as NIO requires. BATON_NIO_EXECUTOR=0 keeps Swift's own pool
// (for comparing, or if a blocking call in user code held up network I/O).
if ProcessInfo.processInfo.environment["BATON_NIO_EXECUTOR"] != "0" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
await BatonMain.run()
