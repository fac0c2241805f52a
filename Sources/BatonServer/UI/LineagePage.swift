import BatonCore
import BatonEngine
import BatonStore
import Foundation

/// `/lineage`: datasets and the pipelines between them as one left-to-right graph, laid out
/// like a pipeline's DAG. Pipelines are rectangles, datasets cylinders coloured by freshness;
/// an edge runs from a pipeline to what it produces and from a dataset to the pipelines that
/// require it (solid) or are triggered by its updates (dashed).
enum LineagePage {
    /// Node ids keep a dataset and a pipeline of the same name apart.
    static func datasetID(_ name: String) -> String { "d:" + name }
    static func pipelineID(_ name: String) -> String { "p:" + name }

    enum Kind { case dataset, pipeline }

    struct Node {
        var id: String
        var kind: Kind
        var name: String
        var state: String
        var detail: String
        var tooltip: String
        var href: String?
    }

    struct Edge: Hashable {
        var from: String
        var to: String
        var relations: Set<String>
    }

    static func page(_ ui: UIEnvironment) async throws -> Page {
        let now = Date()
        let statuses = await ui.engine.datasetStatuses()
        let pipelines = await ui.engine.loadedPipelines()

        var relations: [String: [String: Set<String>]] = [:]
        func connect(_ from: String, _ to: String, _ relation: String) { relations[from, default: [:]][to, default: []].insert(relation) }
        var referenced: Set<String> = []
        for (dataset, uses) in HandoffUI.uses(pipelines) {
            referenced.insert(dataset)
            for use in uses {
                switch use.kind {
                case .produces: connect(pipelineID(use.pipeline), datasetID(dataset), "produces")
                case .requires: connect(datasetID(dataset), pipelineID(use.pipeline), "requires")
                case .triggers: connect(datasetID(dataset), pipelineID(use.pipeline), "triggers")
                }
            }
        }
        let edges = relations.flatMap { from, targets in targets.map { Edge(from: from, to: $0.key, relations: $0.value) } }
            .sorted { ($0.from, $0.to) < ($1.from, $1.to) }
        let connected = Set(edges.flatMap { [$0.from, $0.to] })

        var nodes: [Node] = []
        let known = Set(statuses.map(\.dataset.name))
        for status in statuses {
            let spec = status.dataset
            var detail = status.freshness.rawValue
            if let latest = status.latest { detail += " · " + Format.relative(latest.updatedAt, now: now) }
            var tooltip = "dataset \(spec.name) · \(status.freshness.rawValue)"
            if let owner = spec.owner { tooltip += "\nowner: \(owner)" }
            if let version = spec.schemaVersion { tooltip += "\nschema \(version)" }
            if let freshness = spec.freshness { tooltip += "\nfresh within \(Format.duration(freshness))" }
            nodes.append(
                Node(
                    id: datasetID(spec.name), kind: .dataset, name: spec.name, state: status.freshness.rawValue,
                    detail: detail, tooltip: tooltip, href: UIPath.dataset(spec.name)))
        }
        // A trigger may name a dataset the catalog does not declare; it is drawn, unlinked.
        for name in referenced.subtracting(known).sorted() {
            nodes.append(
                Node(
                    id: datasetID(name), kind: .dataset, name: name, state: "unknown", detail: "not in the catalog",
                    tooltip: "dataset \(name) · not declared in the catalog", href: nil))
        }
        var unconnected: [PipelineRecord] = []
        for record in pipelines {
            guard connected.contains(pipelineID(record.name)) else {
                unconnected.append(record)
                continue
            }
            var tooltip = "pipeline \(record.name)"
            if let owner = record.spec.owner { tooltip += "\nowner: \(owner)" }
            if record.paused { tooltip += "\npaused" }
            nodes.append(
                Node(
                    id: pipelineID(record.name), kind: .pipeline, name: record.name, state: "pipeline",
                    detail: "pipeline" + (record.spec.owner.map { " · \($0)" } ?? "") + (record.paused ? " · paused" : ""),
                    tooltip: tooltip, href: UIPath.pipeline(record.name)))
        }

        let graph: HTML
        if nodes.isEmpty {
            graph = Layout.emptyState(
                "No datasets or hand-offs yet.",
                hint: """
                    <p class="muted">Declare datasets in a catalog file and name them in tasks' <code>produces:</code> and \
                    <code>requires:</code>; the graph draws itself from those.</p>
                    """)
        } else {
            graph = svg(nodes: nodes, edges: edges) + legend
        }
        var others: HTML = .empty
        if !unconnected.isEmpty {
            let links = unconnected.map { "<a href=\"\(UIPath.pipeline($0.name))\">\($0.name)</a>" as HTML }
            others = "<p class=\"muted\">Not shown, no datasets: \(HTML.join(links, separator: ", ")).</p>"
        }

        let datasetCount = nodes.filter { $0.kind == .dataset }.count
        return Page(
            title: "Lineage",
            section: .lineage,
            body: """
                <div class="page-head"><div><h1>Lineage</h1>\
                <p class="subtitle">\(Format.plural(datasetCount, "dataset")) and the pipelines that produce and read them</p></div>\
                <div class="head-actions"><a class="button ghost" href="/datasets">Catalog</a>\
                <a class="button ghost" href="/api/v1/lineage">JSON</a></div></div>
                \(Layout.card("Datasets and pipelines", id: "lineage", region: "lineage", graph + others))
                """,
            live: .all,
            refreshURL: "/lineage")
    }

    static let legend: HTML = """
        <ul class="legend" aria-label="Key">\
        <li><span class="sq st-fresh" aria-hidden="true"></span>fresh</li>\
        <li><span class="sq st-stale" aria-hidden="true"></span>stale</li>\
        <li><span class="sq st-unknown" aria-hidden="true"></span>unknown</li>\
        <li><svg width="22" height="12" viewBox="0 0 22 12" aria-hidden="true" class="key"><rect class="key-pipeline" x="1" y="1" width="20" height="10" rx="3"/></svg>pipeline</li>\
        <li><svg width="22" height="12" viewBox="0 0 22 12" aria-hidden="true" class="key"><path class="key-edge" d="M1 6 H21"/></svg>produces, requires</li>\
        <li><svg width="22" height="12" viewBox="0 0 22 12" aria-hidden="true" class="key"><path class="key-edge dashed" d="M1 6 H21"/></svg>triggered by updates</li>\
        </ul>
        """

    static func svg(nodes: [Node], edges: [Edge]) -> HTML {
        // Lineage may loop (a pipeline reading what it wrote last time); the layering needs a
        // DAG, so edges closing a cycle are left out of the layout and drawn as arcs after.
        let ids = nodes.map(\.id)
        var outgoing: [String: [String]] = [:]
        for edge in edges { outgoing[edge.from, default: []].append(edge.to) }
        var back: Set<[String]> = []
        var visiting: Set<String> = []
        var done: Set<String> = []
        func visit(_ id: String) {
            visiting.insert(id)
            for next in outgoing[id] ?? [] {
                if visiting.contains(next) { back.insert([id, next]) } else if !done.contains(next) { visit(next) }
            }
            visiting.remove(id)
            done.insert(id)
        }
        for id in ids where !done.contains(id) { visit(id) }

        var needs: [String: [String]] = [:]
        for edge in edges where !back.contains([edge.from, edge.to]) { needs[edge.to, default: []].append(edge.from) }
        let detailWidths = Dictionary(
            nodes.map { ($0.id, Double($0.detail.count) * 6.1 + DAGLayout.nodeTextInset + 12) }, uniquingKeysWith: max)
        let layout = DAGLayout(tasks: ids.map { ($0, needs[$0] ?? []) }, minimumWidths: detailWidths)
        let nodeByID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let placed = Dictionary(layout.nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let relationsByPair = Dictionary(edges.map { ([$0.from, $0.to], $0.relations) }, uniquingKeysWith: { a, b in a.union(b) })
        let marker = "arrow-lineage"

        func edgeElement(from: String, to: String, path: String, extraClass: String) -> HTML {
            let relations = relationsByPair[[from, to]] ?? []
            // Only a trigger, with no contract checked at start, is drawn dashed.
            let dashed = relations == ["triggers"]
            let words = relations.sorted().joined(separator: ", ")
            let title = "\(nodeByID[from]?.name ?? from) → \(nodeByID[to]?.name ?? to): \(words)"
            return """
                <path class="edge\(dashed ? " triggers" : "")\(extraClass)" d="\(path)" marker-end="url(#\(marker))" \
                data-from="\(from)" data-to="\(to)"><title>\(title)</title></path>
                """
        }

        var edgeElements: [HTML] = []
        for edge in layout.edges {
            guard let path = edge.svgPath else { continue }
            edgeElements.append(edgeElement(from: edge.from, to: edge.to, path: path, extraClass: ""))
        }
        var extraHeight = 0.0
        for pair in back.sorted(by: { $0.joined() < $1.joined() }) {
            guard let source = placed[pair[0]], let target = placed[pair[1]] else { continue }
            // Out of the source's right side, below everything, back into the target's left.
            let bottom = max(source.y, target.y) + DAGLayout.nodeHeight + 22
            let startX = source.x + source.width
            let startY = source.y + DAGLayout.nodeHeight / 2
            let endX = target.x
            let endY = target.y + DAGLayout.nodeHeight / 2
            let path = "M\(HTML.number(startX)) \(HTML.number(startY)) C\(HTML.number(startX + 48)) \(HTML.number(bottom)) "
                + "\(HTML.number(endX - 48)) \(HTML.number(bottom)) \(HTML.number(endX)) \(HTML.number(endY))"
            edgeElements.append(edgeElement(from: pair[0], to: pair[1], path: path, extraClass: " back"))
            extraHeight = max(extraHeight, bottom + 8 - layout.height)
        }

        var nodeElements: [HTML] = []
        let height = DAGLayout.nodeHeight
        for placement in layout.nodes {
            guard let node = nodeByID[placement.name] else { continue }
            let width = placement.width
            let maxCharacters = Int((width - DAGLayout.nodeTextInset - 10) / DAGLayout.characterWidth)
            let shape: HTML
            switch node.kind {
            case .dataset:
                // A cylinder, the usual mark for stored data: body with rounded ends, then the
                // near edge of the top.
                let rim = 5.0
                shape = """
                    <path class="node-box" d="M0 \(rim) A\(width / 2) \(rim) 0 0 1 \(width) \(rim) V\(height - rim) \
                    A\(width / 2) \(rim) 0 0 1 0 \(height - rim) Z"/>\
                    <path class="node-rim" d="M0 \(rim) A\(width / 2) \(rim) 0 0 0 \(width) \(rim)"/>\
                    <circle class="node-dot" cx="16" cy="\(height / 2 + 2)" r="5"/>
                    """
            case .pipeline:
                shape = """
                    <rect class="node-box" width="\(width)" height="\(height)" rx="6"/>\
                    <rect class="node-dot" x="11" y="\(height / 2 - 5)" width="10" height="10" rx="2"/>
                    """
            }
            let labelY = node.kind == .dataset ? 21.0 : 18.0
            let detailY = node.kind == .dataset ? 34.0 : 32.0
            let body: HTML = """
                <title>\(node.tooltip)</title>\(shape)\
                <text class="node-label" x="\(DAGLayout.nodeTextInset)" y="\(labelY)">\(Format.truncated(node.name, max(6, maxCharacters)))</text>\
                <text class="node-detail" x="\(DAGLayout.nodeTextInset)" y="\(detailY)">\(node.detail)</text>
                """
            let linked: HTML = node.href.map { "<a href=\"\($0)\">\(body)</a>" } ?? body
            let kind = node.kind == .dataset ? "dataset" : "pipeline"
            nodeElements.append(
                """
                <g class="node kind-\(kind) \(Format.stateClass(node.state))" data-node="\(node.id)" \
                transform="translate(\(placement.x) \(placement.y))">\(linked)</g>
                """)
        }
        let totalHeight = layout.height + extraHeight
        return """
            <div class="dag-scroll"><svg class="dag lineage\(layout.width > 1900 ? " wide" : "")" role="group" \
            aria-label="Lineage: datasets and the pipelines that produce and require them" \
            viewBox="0 0 \(layout.width) \(totalHeight)" width="\(layout.width)" height="\(totalHeight)">\
            <defs><marker id="\(marker)" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" \
            orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" class="arrow"/></marker></defs>\
            <g class="edges">\(edgeElements)</g><g class="nodes">\(nodeElements)</g></svg></div>
            """
    }
}
