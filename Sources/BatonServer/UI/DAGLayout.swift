import BatonCore
import Foundation

/// A layered drawing of a pipeline's DAG, left to right.
///
/// The classic Sugiyama steps, each in its simplest useful form: longest-path layering by
/// `needs`, a virtual node wherever an edge skips layers (so long edges bend around nodes and
/// take part in ordering), a few barycenter sweeps that keep the ordering with the fewest
/// crossings, and vertical placement that pulls each node towards its neighbours while
/// keeping the order and the spacing.
struct DAGLayout {
    struct Node {
        var name: String
        var layer: Int
        var x: Double
        var y: Double
        var width: Double
    }

    struct Edge {
        var from: String
        var to: String
        var points: [(x: Double, y: Double)]

        /// The edge as an SVG path: straight along a layer, an S-curve between layers.
        var svgPath: String? {
            guard let first = points.first else { return nil }
            var path = "M\(HTML.number(first.x)) \(HTML.number(first.y))"
            for (previous, point) in zip(points, points.dropFirst()) {
                if previous.y == point.y {
                    path += " L\(HTML.number(point.x)) \(HTML.number(point.y))"
                } else {
                    let middle = (previous.x + point.x) / 2
                    path += " C\(HTML.number(middle)) \(HTML.number(previous.y)) \(HTML.number(middle)) \(HTML.number(point.y)) \(HTML.number(point.x)) \(HTML.number(point.y))"
                }
            }
            return path
        }
    }

    var nodes: [Node]
    var edges: [Edge]
    var width: Double
    var height: Double

    static let nodeHeight = 42.0
    static let nodeGap = 14.0
    static let layerGap = 64.0
    static let padding = 12.0
    static let minNodeWidth = 128.0
    static let maxNodeWidth = 248.0
    /// Approximate advance of one character of the node font (13px system sans).
    static let characterWidth = 7.6
    static let nodeTextInset = 30.0

    /// Lays out tasks given as names with their `needs`, in declaration order; a node is at
    /// least as wide as its name needs, or as `minimumWidths` asks (for a second line of text).
    init(tasks: [(name: String, needs: [String])], minimumWidths: [String: Double] = [:]) {
        let names = tasks.map(\.name)
        let known = Set(names)
        var upstream: [String: [String]] = [:]
        var downstream: [String: [String]] = [:]
        for task in tasks {
            let needs = task.needs.filter { known.contains($0) && $0 != task.name }
            upstream[task.name] = needs
            for need in needs { downstream[need, default: []].append(task.name) }
        }

        // Layering. A cycle cannot reach here (validation rejects it), but a task left out of
        // the topological order is still drawn, in the first layer.
        let graph = TaskGraph(tasks: tasks.map { TaskSpec.stub(name: $0.name, needs: upstream[$0.name] ?? []) })
        let order = graph.topologicalOrder()
        var layer: [String: Int] = [:]
        for name in order { layer[name] = (upstream[name] ?? []).map { (layer[$0] ?? 0) + 1 }.max() ?? 0 }
        for name in names where layer[name] == nil { layer[name] = 0 }
        // A source feeding only later layers sits just before its first consumer, rather than
        // far left with a long edge.
        for name in names where (upstream[name] ?? []).isEmpty {
            if let first = (downstream[name] ?? []).compactMap({ layer[$0] }).min(), first - 1 > 0 {
                layer[name] = first - 1
            }
        }
        let layerCount = (layer.values.max() ?? 0) + 1

        // Virtual graph: real nodes first, then a dummy for every layer an edge skips.
        var vertexName: [String?] = names.map { $0 }
        var vertexLayer: [Int] = names.map { layer[$0] ?? 0 }
        var index: [String: Int] = [:]
        for (position, name) in names.enumerated() { index[name] = position }
        var predecessors = Array(repeating: [Int](), count: names.count)
        var successors = Array(repeating: [Int](), count: names.count)
        var chains: [(from: String, to: String, vertices: [Int])] = []
        func addVertex(layer: Int) -> Int {
            vertexName.append(nil)
            vertexLayer.append(layer)
            predecessors.append([])
            successors.append([])
            return vertexName.count - 1
        }
        let ordered = Set(order)
        for name in order + names.filter({ !ordered.contains($0) }) {
            guard let target = index[name] else { continue }
            for need in upstream[name] ?? [] {
                guard let source = index[need] else { continue }
                var chain = [source]
                var previous = source
                for intermediate in stride(from: vertexLayer[source] + 1, to: vertexLayer[target], by: 1) {
                    let dummy = addVertex(layer: intermediate)
                    successors[previous].append(dummy)
                    predecessors[dummy].append(previous)
                    chain.append(dummy)
                    previous = dummy
                }
                successors[previous].append(target)
                predecessors[target].append(previous)
                chain.append(target)
                chains.append((need, name, chain))
            }
        }

        // Initial order: declaration order, dummies after the real nodes of their layer.
        var layers = Array(repeating: [Int](), count: layerCount)
        for vertex in vertexName.indices { layers[vertexLayer[vertex]].append(vertex) }
        var best = layers
        var bestCrossings = Self.crossings(layers, successors: successors)
        var current = layers
        for sweep in 0..<12 where bestCrossings > 0 {
            let downward = sweep % 2 == 0
            let sequence = downward ? Array(1..<max(layerCount, 1)) : Array((0..<max(layerCount - 1, 0)).reversed())
            for layerIndex in sequence {
                let reference = current[downward ? layerIndex - 1 : layerIndex + 1]
                var position: [Int: Int] = [:]
                for (slot, vertex) in reference.enumerated() { position[vertex] = slot }
                let keyed = current[layerIndex].enumerated().map { slot, vertex -> (Int, Double) in
                    let neighbours = (downward ? predecessors[vertex] : successors[vertex]).compactMap { position[$0] }
                    guard !neighbours.isEmpty else { return (vertex, Double(slot)) }
                    return (vertex, Double(neighbours.reduce(0, +)) / Double(neighbours.count))
                }
                // Stable: ties keep their current relative order.
                current[layerIndex] = keyed.enumerated()
                    .sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }
                    .map(\.element.0)
            }
            let count = Self.crossings(current, successors: successors)
            if count < bestCrossings {
                best = current
                bestCrossings = count
            }
        }

        // Node sizes.
        var nodeWidth: [Int: Double] = [:]
        for (vertex, name) in vertexName.enumerated() {
            guard let name else { continue }
            let text = Double(name.count) * Self.characterWidth + Self.nodeTextInset + 14
            nodeWidth[vertex] = min(Self.maxNodeWidth, max(Self.minNodeWidth, text, minimumWidths[name] ?? 0))
        }
        func vertexHeight(_ vertex: Int) -> Double { vertexName[vertex] == nil ? 0 : Self.nodeHeight }
        func separation(_ a: Int, _ b: Int) -> Double {
            let gap = (vertexName[a] == nil || vertexName[b] == nil) ? Self.nodeGap * 0.75 : Self.nodeGap
            return (vertexHeight(a) + vertexHeight(b)) / 2 + gap
        }

        // Vertical placement: start stacked, then alternate passes that move each node to
        // the mean of its neighbours in the previous layer, as close as order and spacing allow.
        var y: [Double] = Array(repeating: 0, count: vertexName.count)
        for vertices in best {
            var cursor = 0.0
            for (slot, vertex) in vertices.enumerated() {
                if slot > 0 { cursor += separation(vertices[slot - 1], vertex) }
                y[vertex] = cursor
            }
        }
        for pass in 0..<4 {
            let downward = pass % 2 == 0
            let sequence = downward ? Array(1..<max(layerCount, 1)) : Array((0..<max(layerCount - 1, 0)).reversed())
            for layerIndex in sequence {
                let vertices = best[layerIndex]
                let desired = vertices.map { vertex -> Double in
                    let neighbours = downward ? predecessors[vertex] : successors[vertex]
                    guard !neighbours.isEmpty else { return y[vertex] }
                    return neighbours.map { y[$0] }.reduce(0, +) / Double(neighbours.count)
                }
                var gaps: [Double] = [0]
                for slot in vertices.indices.dropFirst() { gaps.append(separation(vertices[slot - 1], vertices[slot])) }
                for (slot, value) in Self.placeInOrder(desired: desired, gaps: gaps).enumerated() {
                    y[vertices[slot]] = value
                }
            }
        }

        // Columns: every node of a layer has the layer's width, which reads tidier than ragged edges.
        var columnX: [Double] = []
        var columnWidth: [Double] = []
        var cursor = Self.padding
        for vertices in best {
            let widest = vertices.compactMap { nodeWidth[$0] }.max() ?? 0
            columnX.append(cursor)
            columnWidth.append(widest)
            cursor += widest + Self.layerGap
        }
        let top = vertexName.indices.map { y[$0] - vertexHeight($0) / 2 }.min() ?? 0
        let bottom = vertexName.indices.map { y[$0] + vertexHeight($0) / 2 }.max() ?? 0
        let shift = Self.padding - top

        nodes = names.compactMap { name in
            guard let vertex = index[name] else { return nil }
            let column = vertexLayer[vertex]
            return Node(
                name: name, layer: column, x: columnX[column], y: y[vertex] + shift - Self.nodeHeight / 2,
                width: columnWidth[column])
        }
        edges = chains.map { chain in
            var points: [(x: Double, y: Double)] = []
            for (step, vertex) in chain.vertices.enumerated() {
                let column = vertexLayer[vertex]
                let middle = y[vertex] + shift
                if step == 0 {
                    points.append((columnX[column] + columnWidth[column], middle))
                } else if step == chain.vertices.count - 1 {
                    points.append((columnX[column], middle))
                } else {
                    // A long edge runs straight through the columns it crosses.
                    points.append((columnX[column], middle))
                    points.append((columnX[column] + columnWidth[column], middle))
                }
            }
            return Edge(from: chain.from, to: chain.to, points: points)
        }
        let contentWidth: Double = cursor - Self.layerGap + Self.padding
        let contentHeight: Double = bottom - top + 2 * Self.padding
        width = max(contentWidth, Self.minNodeWidth + 2 * Self.padding)
        height = max(contentHeight, Self.nodeHeight + 2 * Self.padding)
    }

    /// Edge crossings between neighbouring layers.
    static func crossings(_ layers: [[Int]], successors: [[Int]]) -> Int {
        var total = 0
        for layerIndex in layers.indices.dropLast() {
            var position: [Int: Int] = [:]
            for (slot, vertex) in layers[layerIndex + 1].enumerated() { position[vertex] = slot }
            var segments: [(Int, Int)] = []
            for (slot, vertex) in layers[layerIndex].enumerated() {
                for next in successors[vertex] { if let target = position[next] { segments.append((slot, target)) } }
            }
            for first in segments.indices {
                for second in segments.indices where second > first {
                    let (a1, b1) = segments[first]
                    let (a2, b2) = segments[second]
                    if (a1 < a2 && b1 > b2) || (a1 > a2 && b1 < b2) { total += 1 }
                }
            }
        }
        return total
    }

    /// Positions closest (least squares) to `desired` that keep the order with at least
    /// `gaps[i]` between item i-1 and i: subtracting the cumulative gaps turns this into
    /// isotonic regression, solved by pooling adjacent violators.
    static func placeInOrder(desired: [Double], gaps: [Double]) -> [Double] {
        guard !desired.isEmpty else { return [] }
        var offsets: [Double] = []
        var total = 0.0
        for gap in gaps {
            total += gap
            offsets.append(total)
        }
        let targets = zip(desired, offsets).map { $0 - $1 }
        var blocks: [(sum: Double, count: Int)] = []
        for target in targets {
            blocks.append((target, 1))
            while blocks.count > 1 {
                let last = blocks[blocks.count - 1]
                let previous = blocks[blocks.count - 2]
                guard previous.sum / Double(previous.count) > last.sum / Double(last.count) else { break }
                blocks.removeLast(2)
                blocks.append((previous.sum + last.sum, previous.count + last.count))
            }
        }
        var result: [Double] = []
        for block in blocks {
            result += Array(repeating: block.sum / Double(block.count), count: block.count)
        }
        return zip(result, offsets).map { $0 + $1 }
    }
}

extension TaskSpec {
    /// A task with only a name and its needs, for graph algorithms.
    static func stub(name: String, needs: [String]) -> TaskSpec {
        TaskSpec(name: name, command: .argv(["true"]), needs: needs)
    }
}

/// Renders a `DAGLayout` as SVG.
enum DAGView {
    struct NodeState {
        var state: String
        /// A second line such as "success · 3.2s".
        var detail: String?
        var href: String?
    }

    /// - Parameters:
    ///   - id: a prefix that keeps the arrow marker's id unique on the page.
    ///   - states: each task's state in the run shown; tasks without one are drawn neutral.
    static func svg(
        tasks: [TaskSpec], states: [String: NodeState], id: String, label: String, taskHref: (String) -> String?
    ) -> HTML {
        guard !tasks.isEmpty else { return Layout.emptyState("This pipeline has no tasks.") }
        // The second line uses an 11px font: about 6.1px a character.
        let detailWidths = states.compactMapValues { state in
            state.detail.map { Double($0.count) * 6.1 + DAGLayout.nodeTextInset + 12 }
        }
        let layout = DAGLayout(tasks: tasks.map { ($0.name, $0.needs) }, minimumWidths: detailWidths)
        let marker = "arrow-\(id)"
        var edges: [HTML] = []
        for edge in layout.edges {
            guard let path = edge.svgPath else { continue }
            edges.append(
                "<path class=\"edge\" d=\"\(path)\" marker-end=\"url(#\(marker))\" data-from=\"\(edge.from)\" data-to=\"\(edge.to)\"/>")
        }
        let taskByName = Dictionary(tasks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var nodes: [HTML] = []
        for node in layout.nodes {
            let state = states[node.name]
            let maxCharacters = Int((node.width - DAGLayout.nodeTextInset - 10) / DAGLayout.characterWidth)
            let labelText = Format.truncated(node.name, max(6, maxCharacters))
            var tooltip = node.name
            if let state { tooltip += " · " + Format.stateWords(state.state) }
            if let task = taskByName[node.name] {
                if !task.needs.isEmpty { tooltip += "\nneeds: " + task.needs.joined(separator: ", ") }
                if task.triggerRule != .allSuccess { tooltip += "\ntrigger rule: " + task.triggerRule.rawValue }
                if let when = task.when { tooltip += "\nwhen: " + when }
            }
            let textY = state?.detail == nil ? DAGLayout.nodeHeight / 2 + 4.5 : 18.0
            var detail: HTML = .empty
            if let text = state?.detail {
                detail = "<text class=\"node-detail\" x=\"\(DAGLayout.nodeTextInset)\" y=\"32\">\(text)</text>"
            }
            let body: HTML = """
                <title>\(tooltip)</title>\
                <rect class="node-box" width="\(node.width)" height="\(DAGLayout.nodeHeight)" rx="8"/>\
                <circle class="node-dot" cx="16" cy="\(DAGLayout.nodeHeight / 2)" r="5"/>\
                <text class="node-label" x="\(DAGLayout.nodeTextInset)" y="\(textY)">\(labelText)</text>\(detail)
                """
            let linked: HTML
            if let href = state?.href ?? taskHref(node.name) {
                linked = "<a href=\"\(href)\">\(body)</a>"
            } else {
                linked = body
            }
            nodes.append(
                """
                <g class="node \(Format.stateClass(state?.state))" data-task="\(node.name)" \
                transform="translate(\(node.x) \(node.y))">\(linked)</g>
                """)
        }
        return """
            <div class="dag-scroll"><svg class="dag\(layout.width > 1900 ? " wide" : "")" role="group" aria-label="\(label)" \
            viewBox="0 0 \(layout.width) \(layout.height)" width="\(layout.width)" height="\(layout.height)">\
            <defs><marker id="\(marker)" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" \
            orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" class="arrow"/></marker></defs>\
            <g class="edges">\(edges)</g><g class="nodes">\(nodes)</g></svg></div>
            """
    }

    /// The colour key for task states.
    static func legend(_ states: [String]) -> HTML {
        let items = states.map { state -> HTML in
            "<li><span class=\"sq \(Format.stateClass(state))\" aria-hidden=\"true\"></span>\(Format.stateWords(state))</li>"
        }
        return "<ul class=\"legend\" aria-label=\"Colour key\">\(items)</ul>"
    }
}
