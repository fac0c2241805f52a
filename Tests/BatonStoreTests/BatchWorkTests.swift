import BatonStore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct BatchWorkTests {
    #if os(Linux)
        @Test func batchWorkRunsTenNiceLevelsBelowTheProcessAndNeverSinksFurther() async throws {
            let processNiceness = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
            let expected = min(19, processNiceness + BatchWork.niceness)
            var seen: [Int32] = []
            // More jobs than threads, so every batch thread runs several.
            for _ in 0..<8 {
                seen.append(try await BatchWork.run { BatchWork.callingThreadNiceness() })
            }
            #expect(seen == Array(repeating: expected, count: 8))
            #expect(BatchWork.callingThreadNiceness() == processNiceness)
        }
    #endif

    @Test func batchWorkReturnsTheResultAndPassesErrorsOn() async throws {
        struct Refused: Error, Equatable {}
        #expect(try await BatchWork.run { 6 * 7 } == 42)
        await #expect(throws: Refused.self) { try await BatchWork.run { () throws -> Int in throw Refused() } }
    }
}
