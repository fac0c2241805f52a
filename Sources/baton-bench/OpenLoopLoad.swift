#if canImport(CDispatch)
    // With NIO linked in, Glibc's timespec is found through CDispatch, and member import
    // visibility wants that module imported by name.
    import CDispatch
#endif
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A fixed-rate (open-loop) HTTP load: each of `connections` keep-alive connections sends
/// its share of `rate` requests per second on a fixed schedule, and a request's latency counts
/// from when it was due, not from when it was sent, so a stalled server cannot hide its stall
/// (wrk's closed loop waits for each answer before sending the next, which understates tails).
enum OpenLoopLoad {
    struct Result {
        var latenciesMs: [Double]
        var errors: Int
        var seconds: Double
        var requestsPerSecond: Double { Double(latenciesMs.count) / seconds }
        func percentile(_ share: Double) -> Double {
            let sorted = latenciesMs.sorted()
            return sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(share * Double(sorted.count)))]
        }
    }

    static func nowNanos() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// `paths(i)` gives the i-th request's path (so requests vary, as real lookups do); with a
    /// `body` the requests are JSON POSTs.
    static func run(
        host: String, port: UInt16, connections: Int, rate: Double, seconds: Double, paths: @escaping @Sendable (Int) -> String,
        body: String? = nil
    )
        -> Result
    {
        let interval = UInt64(Double(connections) / rate * 1e9)
        let perConnection = Int(seconds * rate / Double(connections))
        let results = UnsafeMutableBufferPointer<(latencies: [Double], errors: Int)>.allocate(capacity: connections)
        results.initialize(repeating: ([], 0))
        defer { results.deallocate() }
        let start = nowNanos() + 200_000_000
        let group = DispatchGroup()
        nonisolated(unsafe) let shared = results
        for connection in 0..<connections {
            let thread = Thread {
                shared[connection] = drive(
                    host: host, port: port, start: start + UInt64(connection) * interval / UInt64(connections), interval: interval,
                    count: perConnection, path: { paths($0 * connections + connection) }, body: body)
                group.leave()
            }
            group.enter()
            thread.start()
        }
        group.wait()
        let finished = nowNanos()
        var all: [Double] = []
        var errors = 0
        for entry in results {
            all += entry.latencies
            errors += entry.errors
        }
        // Served throughput over the time the requests actually took, not the schedule.
        return Result(latenciesMs: all, errors: errors, seconds: Double(finished - start) / 1e9)
    }

    static func drive(
        host: String, port: UInt16, start: UInt64, interval: UInt64, count: Int, path: (Int) -> String, body: String? = nil
    )
        -> (latencies: [Double], errors: Int)
    {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return ([], count) }
        defer { close(socket) }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return ([], count) }
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        var errors = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        // Requests are built before the clock starts: the generator shares the CPUs with the
        // server, and every microsecond it spends is one the server does not get.
        let requests = (0..<min(count, 4096)).map { index in
            guard let body else { return Array("GET \(path(index)) HTTP/1.1\r\nHost: \(host)\r\n\r\n".utf8) }
            return Array(
                "POST \(path(index)) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        }
        for index in 0..<count {
            let due = start + UInt64(index) * interval
            var wake = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
            if nowNanos() < due { clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nil) }
            let request = requests[index % requests.count]
            guard request.withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, 0) }) == request.count else {
                errors += 1
                continue
            }
            // Read one response: the head, then Content-Length bytes of body.
            var received = 0
            var needed: Int?
            while needed == nil || received < needed! {
                let got = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + received, $0.count - received, 0) }
                if got <= 0 { return (latencies, errors + count - index) }
                received += got
                if needed == nil, let head = headLength(buffer, received) {
                    guard let length = contentLength(buffer, head) else { return (latencies, errors + count - index) }
                    needed = head + length
                    // "HTTP/1.1 200": the status digits are bytes 9 to 11.
                    if !(buffer[9] == 50 && buffer[10] == 48 && buffer[11] == 48) { errors += 1 }
                }
            }
            latencies.append(Double(nowNanos() - due) / 1e6)
        }
        return (latencies, errors)
    }

    /// The Content-Length header's value, found without building strings.
    static func contentLength(_ buffer: [UInt8], _ head: Int) -> Int? {
        let name = Array("content-length:".utf8)
        var index = 0
        while index + name.count < head {
            var matches = true
            for offset in 0..<name.count where buffer[index + offset] | 0x20 != name[offset] | 0x20 {
                matches = false
                break
            }
            if matches {
                var position = index + name.count
                while buffer[position] == 32 { position += 1 }
                var value = 0
                while position < head, buffer[position] >= 48, buffer[position] <= 57 {
                    value = value * 10 + Int(buffer[position] - 48)
                    position += 1
                }
                return value
            }
            index += 1
        }
        return nil
    }

    static func headLength(_ buffer: [UInt8], _ count: Int) -> Int? {
        guard count >= 4 else { return nil }
        for index in 3..<count where buffer[index - 3] == 13 && buffer[index - 2] == 10 && buffer[index - 1] == 13 && buffer[index] == 10 {
            return index + 1
        }
        return nil
    }
}
