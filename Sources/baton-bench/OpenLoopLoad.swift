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
    ///
    /// One thread drives every connection through `select` (microsecond timeouts, unlike
    /// `poll` and `epoll_wait`), waking at the next due time or
    /// answer: the generator shares the CPUs with the server, and a thread per connection
    /// (sleep, send, block in recv) added two context switches per request and tails of its own
    /// to what it measured.
    static func run(
        host: String, port: UInt16, connections: Int, rate: Double, seconds: Double, paths: @escaping @Sendable (Int) -> String,
        body: String? = nil
    )
        -> Result
    {
        let interval = UInt64(Double(connections) / rate * 1e9)
        let perConnection = Int(seconds * rate / Double(connections))
        let drivers = (0..<connections).map { connection in
            Driver(host: host, port: port, count: perConnection, path: { paths($0 * connections + connection) }, body: body)
        }
        let start = nowNanos() + 200_000_000
        for (connection, driver) in drivers.enumerated() {
            driver.start = start + UInt64(connection) * interval / UInt64(connections)
            driver.interval = interval
        }
        let highest = drivers.map(\.socket).max() ?? 0
        while drivers.contains(where: { !$0.finished }) {
            var now = nowNanos()
            var nextDue = UInt64.max
            for driver in drivers where !driver.finished && !driver.waiting {
                if driver.due <= now {
                    driver.send()
                    now = nowNanos()
                } else {
                    nextDue = min(nextDue, driver.due)
                }
            }
            var timeout = timeval(tv_sec: 1, tv_usec: 0)
            if nextDue != .max {
                let wait = (nextDue > now ? nextDue - now : 0) / 1000
                timeout = timeval(tv_sec: Int(wait / 1_000_000), tv_usec: Int(wait % 1_000_000))
            }
            var readable = fd_set()
            for driver in drivers where driver.waiting { Self.add(driver.socket, to: &readable) }
            guard select(highest + 1, &readable, nil, nil, &timeout) > 0 else { continue }
            for driver in drivers where driver.waiting && Self.contains(driver.socket, in: readable) {
                driver.receive()
            }
        }
        let finished = nowNanos()
        var all: [Double] = []
        var errors = 0
        for driver in drivers {
            all += driver.latencies
            errors += driver.errors
            close(driver.socket)
        }
        // Served throughput over the time the requests actually took, not the schedule.
        return Result(latenciesMs: all, errors: errors, seconds: Double(finished - start) / 1e9)
    }

    // FD_SET and FD_ISSET are macros Swift cannot import: the set is a bit array.
    static func add(_ descriptor: Int32, to set: inout fd_set) {
        withUnsafeMutableBytes(of: &set) { bytes in
            bytes[Int(descriptor) / 8] |= UInt8(1) << (UInt8(descriptor % 8))
        }
    }

    static func contains(_ descriptor: Int32, in set: fd_set) -> Bool {
        withUnsafeBytes(of: set) { bytes in bytes[Int(descriptor) / 8] & (UInt8(1) << UInt8(descriptor % 8)) != 0 }
    }

    /// One keep-alive connection: sends each request when due (or when the previous answer
    /// arrives, if that is later) and times it from when it was due.
    final class Driver {
        let socket: Int32
        let count: Int
        var start: UInt64 = 0
        var interval: UInt64 = 0
        var index = 0
        var waiting = false
        var finished = false
        var latencies: [Double] = []
        var errors = 0
        private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        private var received = 0
        private var needed: Int?
        private let requests: [[UInt8]]

        var due: UInt64 { start + UInt64(index) * interval }

        init(host: String, port: UInt16, count: Int, path: (Int) -> String, body: String?) {
            self.count = count
            latencies.reserveCapacity(count)
            // Requests are built before the clock starts, so the generator spends its time
            // sending, not formatting.
            requests = (0..<min(max(count, 1), 4096)).map { index in
                guard let body else { return Array("GET \(path(index)) HTTP/1.1\r\nHost: \(host)\r\n\r\n".utf8) }
                return Array(
                    "POST \(path(index)) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
            }
            socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if socket < 0 || connected != 0 || count == 0 { fail() }
        }

        /// Counts every request not yet answered as an error and stops.
        private func fail() {
            errors += count - index
            index = count
            finished = true
        }

        func send() {
            let request = requests[index % requests.count]
            guard request.withUnsafeBytes({ Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
                return fail()
            }
            waiting = true
            received = 0
            needed = nil
        }

        /// Reads what arrived; an answer read whole ends the request.
        func receive() {
            let got = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + received, $0.count - received, Int32(MSG_DONTWAIT)) }
            if got < 0, errno == EAGAIN || errno == EINTR { return }
            guard got > 0 else { return fail() }
            received += got
            if needed == nil, let head = OpenLoopLoad.headLength(buffer, received) {
                guard let length = OpenLoopLoad.contentLength(buffer, head) else { return fail() }
                needed = head + length
                // "HTTP/1.1 200": the status digits are bytes 9 to 11.
                if !(buffer[9] == 50 && buffer[10] == 48 && buffer[11] == 48) { errors += 1 }
            }
            guard let needed, received >= needed else { return }
            latencies.append(Double(OpenLoopLoad.nowNanos() - due) / 1e6)
            waiting = false
            index += 1
            if index >= count { finished = true }
        }
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

extension OpenLoopLoad {
    /// `baton-bench openloop`: the same fixed-rate load against a server that is already running,
    /// for comparing server settings by hand. In `--path`, `{n}` becomes 1 + (i × 7919) mod
    /// `--entities` (default 10,000), as the features benchmark's lookups do.
    static func runFromCommandLine(_ arguments: [String]) {
        var port: UInt16?
        var rate = 20_000.0
        var seconds = 10.0
        var connections = 16
        var path = "/healthz"
        var entities = 10_000
        var body: String?
        var machine = false
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            let value = iterator.next() ?? ""
            switch argument {
            case "--port": port = UInt16(value)
            case "--rate": rate = Double(value) ?? rate
            case "--seconds": seconds = Double(value) ?? seconds
            case "--connections": connections = Int(value) ?? connections
            case "--path": path = value
            case "--entities": entities = Int(value) ?? entities
            case "--body": body = value
            case "--machine": machine = value == "true"
            default:
                FileHandle.standardError.write(Data("openloop: unknown option \(argument)\n".utf8))
                exit(2)
            }
        }
        guard let port else {
            FileHandle.standardError.write(Data("openloop: --port is required (the running server's port)\n".utf8))
            exit(2)
        }
        let (template, count) = (path, entities)
        let load = run(
            host: "127.0.0.1", port: port, connections: connections, rate: rate, seconds: seconds,
            paths: { template.replacingOccurrences(of: "{n}", with: String(1 + ($0 &* 7919) % count)) }, body: body)
        if machine {
            // For a parent benchmark that runs the load in a process of its own.
            print("openloop-result \(load.percentile(0.5)) \(load.percentile(0.99)) \(load.percentile(0.999)) \(load.requestsPerSecond) \(load.errors)")
            return
        }
        print(String(format: "%.0f requests/s offered on %d connections for %.0f s: served %.0f requests/s, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, %d errors",
                     rate, connections, seconds, load.requestsPerSecond, load.percentile(0.5), load.percentile(0.99), load.percentile(0.999), load.errors))
    }
}
