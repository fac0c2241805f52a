import Foundation

extension Pipeline {
    /// Checks the pipeline with the rules of pipeline files (cron, unknown needs, cycles,
    /// templates, conditions, names, datasets when `datasets` is given), each problem located at
    /// the Swift line that declared the offending task or pipeline.
    public func validate(datasets: Set<String>? = nil) -> [ValidationIssue] {
        let described = describe(executable: Worker.executablePath)
        var issues = described.problems.map { problem in
            ValidationIssue(
                file: problem.location.file, line: problem.location.line, column: 1, message: problem.message,
                fix: problem.fix)
        }
        if let pipeline = described.pipeline {
            let outcome = PipelineParser.parse(pipeline.spec, file: name, datasets: datasets)
            issues += outcome.issues.map { issue in
                var located = issue
                let location = pipeline.location(ofLine: issue.line)
                located.file = location.file
                located.line = location.line
                located.column = 1
                return located
            }
        }
        return issues
    }

    /// The pipeline as `describe` answers: its spec as pipeline-file text with the declaration
    /// behind each line, or the problems that keep it from having one.
    func describe(executable: String) -> (pipeline: SwiftDescribeAnswer.Pipeline?, problems: [SwiftDescribeAnswer.Problem]) {
        var problems: [SwiftDescribeAnswer.Problem] = []
        var first: [String: SwiftDescribeAnswer.Location] = [:]
        for task in tasks {
            if let earlier = first[task.spec.name] {
                problems.append(
                    .init(
                        location: task.location, pipeline: name,
                        message: "task '\(task.spec.name)' is declared twice in pipeline '\(name)' (first at \(earlier))",
                        fix: "give one of them another name"))
            } else {
                first[task.spec.name] = task.location
            }
        }
        guard problems.isEmpty else { return (nil, problems) }
        let rendered = SpecText.render(spec(executable: executable))
        let lines = rendered.owners.map { owner in owner.flatMap { first[$0] } ?? location }
        return (.init(name: name, location: location, spec: rendered.text, lines: lines), [])
    }
}
