/// The dependency structure of a pipeline's tasks.
public struct TaskGraph: Sendable, Hashable {
    public let names: [String]
    public let upstream: [String: [String]]
    public let downstream: [String: [String]]

    public init(tasks: [TaskSpec]) {
        names = tasks.map(\.name)
        var up: [String: [String]] = [:]
        var down: [String: [String]] = [:]
        for task in tasks {
            up[task.name] = task.needs
            down[task.name, default: []] += []
            for dependency in task.needs { down[dependency, default: []].append(task.name) }
        }
        upstream = up
        downstream = down
    }

    public var roots: [String] { names.filter { (upstream[$0] ?? []).isEmpty } }

    /// A dependency cycle as a path that starts and ends with the same task, if there is one.
    public func findCycle() -> [String]? {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [String] = []
        func visit(_ name: String) -> [String]? {
            switch marks[name] {
            case .done: return nil
            case .visiting:
                let start = stack.firstIndex(of: name)!
                return Array(stack[start...]) + [name]
            case nil: break
            }
            marks[name] = .visiting
            stack.append(name)
            for next in upstream[name] ?? [] where upstream[next] != nil {
                if let cycle = visit(next) { return cycle }
            }
            stack.removeLast()
            marks[name] = .done
            return nil
        }
        for name in names {
            if let cycle = visit(name) { return cycle.reversed() }
        }
        return nil
    }

    /// All tasks that `name` depends on, directly or transitively.
    public func ancestors(of name: String) -> Set<String> {
        var seen: Set<String> = []
        var pending = upstream[name] ?? []
        while let next = pending.popLast() {
            if seen.insert(next).inserted { pending += upstream[next] ?? [] }
        }
        return seen
    }

    /// Tasks in an order where every task follows its upstreams (declaration order among peers).
    public func topologicalOrder() -> [String] {
        var remaining = Dictionary(uniqueKeysWithValues: names.map { ($0, (upstream[$0] ?? []).count) })
        var order: [String] = []
        var ready = names.filter { remaining[$0] == 0 }
        while !ready.isEmpty {
            let next = ready.removeFirst()
            order.append(next)
            for child in downstream[next] ?? [] {
                remaining[child, default: 0] -= 1
                if remaining[child] == 0 { ready.append(child) }
            }
        }
        return order
    }
}
