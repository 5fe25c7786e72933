import Foundation
@testable import LifecycleDaemon
import LifecycleHTTP
import Prometheus
import Testing
import Yams

/// The Grafana dashboard and Prometheus rules in `config/` against what the daemon exports
/// and what the README documents.
@Suite("Dashboard and Prometheus rules")
struct MonitoringConfigTests {
    static let rulesPath = "config/prometheus/lifecycled.rules.yml"
    static let dashboardPath = "config/grafana/lifecycled-dashboard.json"

    struct RuleFile: Decodable {
        struct Group: Decodable { var name: String; var rules: [Rule] }
        struct Rule: Decodable {
            var record: String?
            var alert: String?
            var expr: String
            var labels: [String: String]?
            var annotations: [String: String]?
        }
        var groups: [Group]
        var rules: [Rule] { groups.flatMap(\.rules) }
        var recorded: [String: String] {
            Dictionary(uniqueKeysWithValues: rules.compactMap { rule in rule.record.map { ($0, rule.expr) } })
        }
    }

    struct Dashboard: Decodable {
        struct Source: Decodable, Equatable { var type: String; var uid: String }
        struct Target: Decodable { var expr: String; var datasource: Source }
        struct Panel: Decodable { var title: String; var targets: [Target]? }
        struct Variable: Decodable { var name: String; var type: String; var query: String; var multi: Bool?; var includeAll: Bool? }
        struct Templating: Decodable { var list: [Variable] }
        var panels: [Panel]
        var templating: Templating
        var targets: [Target] { panels.flatMap { $0.targets ?? [] } }
    }

    static func text(_ path: String) throws -> String {
        try String(contentsOfFile: BinaryRunner.path(path), encoding: .utf8)
    }

    static func rules() throws -> RuleFile { try YAMLDecoder().decode(RuleFile.self, from: text(rulesPath)) }

    static func dashboard() throws -> Dashboard { try JSONDecoder().decode(Dashboard.self, from: Data(text(dashboardPath).utf8)) }

    /// Metric names in a file: raw ones (`lifecycled_…`) and recording rules' (`level:lifecycled_…:operations`).
    static func metricNames(in text: String) -> Set<String> {
        Set(text.matches(of: /[a-zA-Z_:][a-zA-Z0-9_:]*/).map { String($0.output) }.filter {
            $0.hasPrefix("lifecycled_") || ($0.contains(":") && $0.contains("lifecycled_"))
        })
    }

    /// The names `/metrics` shows with every family present: each label value that is made
    /// lazily has been seen once, and a checkpoint has been published.
    static func exposedNames() throws -> Set<String> {
        let registry = PrometheusCollectorRegistry()
        let metrics = DaemonMetrics(
            factory: DaemonMetrics.prometheusFactory(registry: registry), triggers: [TriggerArm("churn_risk", nil)], stages: ["at_risk"])
        var counters = PipelineCounters()
        counters.eventsRejected = ["not_json": 1]
        metrics.update(counters)
        metrics.set(
            usersTracked: 1, stateBytes: 1_024, usersPerStage: [("at_risk", 1)], lag: [("user-events[0]", 5)], assigned: ["user-events[0]"],
            restoring: [("user-events[1]", 10)], lastCheckpoint: (at: 1_000, seconds: 0.1), now: 2_000, ready: true)
        metrics.latency.recordMilliseconds(3)
        let server = try StatusServer(host: "127.0.0.1", port: 0, board: StatusBoard(), registry: registry, clock: { 1_000_000 })
        defer { server.close() }
        let response = StatusServerTests.request(server.port, "/metrics")
        try #require(response.status == 200)
        var names = Set<String>()
        for line in response.body.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let fields = line.split(separator: " ")
            let name = String(fields[2])
            names.insert(name)
            if fields[3] == "histogram" { names.formUnion(["_bucket", "_sum", "_count"].map { name + $0 }) }
        }
        return names
    }

    @Test("every metric the dashboard and the rules use is in /metrics, and every recording rule they use is defined")
    func metricsExist() throws {
        let exposed = try Self.exposedNames()
        let recorded = Set(try Self.rules().recorded.keys)
        #expect(exposed.contains("lifecycled_event_to_trigger_seconds_bucket") && exposed.contains("lifecycled_restore_remaining_records"))
        for path in [Self.rulesPath, Self.dashboardPath] {
            let used = Self.metricNames(in: try Self.text(path))
            #expect(!used.isEmpty)
            let raw = used.filter { !$0.contains(":") }
            #expect(raw.subtracting(exposed).isEmpty, "\(path) uses metrics /metrics does not have: \(raw.subtracting(exposed).sorted())")
            let rules = used.filter { $0.contains(":") }
            #expect(rules.subtracting(recorded).isEmpty, "\(path) uses undefined recording rules: \(rules.subtracting(recorded).sorted())")
        }
    }

    @Test("every alert has a severity, a summary and a description")
    func alertsAreAnnotated() throws {
        let alerts = try Self.rules().rules.filter { $0.alert != nil }
        #expect(alerts.count >= 7)
        for alert in alerts {
            #expect(["critical", "warning"].contains(alert.labels?["severity"]), "\(alert.alert!)")
            #expect(alert.annotations?["summary"]?.isEmpty == false && alert.annotations?["description"]?.isEmpty == false, "\(alert.alert!)")
        }
    }

    @Test("the README's query table lists every recording rule with its expression")
    func readmeQueries() throws {
        var documented: [String: String] = [:]
        for line in try Self.text("README.md").split(separator: "\n") {
            if let row = line.wholeMatch(of: /\|[^|`]+\| `([^`]+:[^`]+)` \| `([^`]+)` \|/) {
                documented[String(row.output.1)] = String(row.output.2)
            }
        }
        #expect(documented == (try Self.rules().recorded))
    }

    @Test("the dashboard: every query on the data source variable; job and instance (multi, all) variables")
    func dashboardVariables() throws {
        let dashboard = try Self.dashboard()
        let variables = Dictionary(uniqueKeysWithValues: dashboard.templating.list.map { ($0.name, $0) })
        #expect(variables["datasource"]?.type == "datasource" && variables["datasource"]?.query == "prometheus")
        #expect(variables["job"]?.type == "query")
        #expect(variables["instance"]?.multi == true && variables["instance"]?.includeAll == true)
        #expect(dashboard.targets.count >= 20)
        for target in dashboard.targets {
            #expect(target.datasource == .init(type: "prometheus", uid: "${datasource}"), "\(target.expr)")
        }
    }

    @Test("the dashboard's queries are valid PromQL (promtool checks them as rules)",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool")))
    func dashboardQueriesParse() throws {
        // Grafana's variables as a query would have them filled in.
        let queries = try Self.dashboard().targets.map {
            $0.expr.replacingOccurrences(of: "$__rate_interval", with: "5m").replacing(/\$[a-z_]+/, with: "x")
        }
        let rules = ["groups": [["name": "dashboard", "rules": queries.enumerated().map { ["record": "query_\($0.offset)", "expr": $0.element] }]]]
        // JSON is YAML, which promtool reads.
        let file = try BinaryRunner.temporaryFile(
            String(decoding: try JSONSerialization.data(withJSONObject: rules), as: UTF8.self), name: "dashboard.rules.json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "rules", file]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("SUCCESS: \(queries.count) rules found"), "\(output)")
    }
}
